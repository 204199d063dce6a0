const {exec} = require('@posthog/hogvm');
const fs = require('fs');
const code = JSON.parse(fs.readFileSync(process.argv[2] === '/dev/stdin' ? 0 : process.argv[2], 'utf8'));
const toFlags = (re) => { const m = re.match(/^\(\?([ismx]+)\)/); if (m) return [re.slice(m[0].length), m[1].replace('x','')]; return [re, ''] };
const options = { external: { regex: { match: (re, s) => { const [p,f]=toFlags(re); return new RegExp(p,f).test(s) }, extract: (re, s) => { const [p,f]=toFlags(re); const m = new RegExp(p,f).exec(s); return m ? (m[1] ?? m[0]) : '' } }, crypto: require('crypto') } };
const n = +(process.argv[3]||0);
if (n) { const log = console.log; console.log = () => {}; for (let i=0;i<n/10;i++) exec(code, options); const t=process.hrtime.bigint(); for (let i=0;i<n;i++) exec(code, options); const dt=Number(process.hrtime.bigint()-t)/n; log(`${dt.toFixed(0)} ns/op`); }
else { const r = exec(code, options); if (r.error) { console.error('ERROR', String(r.error)); } }
