package embedetcd

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore passes etcd's zap entries to slog at or above a level, and drops
// everything once the member is closing: etcd reports its own listeners
// closing as errors, which would only alarm whoever reads the log.
type slogCore struct {
	log     *slog.Logger
	min     zapcore.Level
	fields  []slog.Attr
	closing *atomic.Bool
}

func newLogger(log *slog.Logger, min zapcore.Level, closing *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{log: log, min: min, closing: closing})
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
