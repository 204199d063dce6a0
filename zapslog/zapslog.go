// Package zapslog passes log entries of libraries that log with zap (etcd's
// server and client) to a log/slog logger.
package zapslog

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore passes zap entries at or above min to slog, and drops everything
// once mute is set: etcd reports its own listeners closing, and its client
// its connection closing, as errors, which would only alarm whoever reads
// the log of a clean shutdown.
type slogCore struct {
	log     *slog.Logger
	min     zapcore.Level
	fields  []slog.Attr
	closing *atomic.Bool
}

// New returns a zap logger writing to log at or above min. Once mute is
// set (it may be nil) nothing more is written.
func New(log *slog.Logger, min zapcore.Level, mute *atomic.Bool) *zap.Logger {
	if mute == nil {
		mute = new(atomic.Bool)
	}
	return zap.New(&slogCore{log: log, min: min, closing: mute})
}

// Level maps a slog level to the zap level at or above which entries pass.
func Level(l slog.Level) zapcore.Level {
	switch {
	case l <= slog.LevelDebug:
		return zapcore.DebugLevel
	case l <= slog.LevelInfo:
		return zapcore.InfoLevel
	case l <= slog.LevelWarn:
		return zapcore.WarnLevel
	}
	return zapcore.ErrorLevel
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= c.min && !c.closing.Load() }

func (c *slogCore) With(fs []zapcore.Field) zapcore.Core {
	n := *c
	n.fields = append(append([]slog.Attr(nil), c.fields...), attrs(fs)...)
	return &n
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	lv := slog.LevelInfo
	switch {
	case e.Level >= zapcore.ErrorLevel:
		lv = slog.LevelError
	case e.Level == zapcore.WarnLevel:
		lv = slog.LevelWarn
	case e.Level <= zapcore.DebugLevel:
		lv = slog.LevelDebug
	}
	as := append(append([]slog.Attr{}, c.fields...), attrs(fs)...)
	c.log.LogAttrs(context.Background(), lv, e.Message, as...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func attrs(fs []zapcore.Field) []slog.Attr {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fs {
		f.AddTo(enc)
	}
	out := make([]slog.Attr, 0, len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}
