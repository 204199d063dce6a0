import json, subprocess, sys

class T(list): pass          # tuple
class D(list): pass          # dict as list of pairs
class F(float): pass         # explicit float

def emit(v):
    if v is None: return [31]
    if v is True: return [29]
    if v is False: return [30]
    if isinstance(v, F): return [34, float(v)]
    if isinstance(v, float): return [34, v]
    if isinstance(v, int): return [33, v]
    if isinstance(v, str): return [32, v]
    if isinstance(v, D):
        out = []
        for k, x in v: out += emit(k) + emit(x)
        return out + [42, len(v)]
    if isinstance(v, T):
        out = []
        for x in v: out += emit(x)
        return out + [44, len(v)]
    if isinstance(v, list):
        out = []
        for x in v: out += emit(x)
        return out + [43, len(v)]
    if isinstance(v, Raw): return list(v.code)
    raise Exception(v)

class Raw:
    def __init__(self, *code): self.code = code

def call(name, *args):
    out = []
    for a in args: out += emit(a)
    return Raw(*(out + [2, name, len(args)]))

def op(code, left, right):
    return Raw(*(emit(right) + emit(left) + [code]))

def prog(expr):
    return emit(expr) + [43, 1, 2, "print", 1, 35]

cases = []
def case(name, expr):
    cases.append({"name": name, "code": ["_H", 1] + prog(expr)})

exec(open(__file__.replace('gen.py', 'cases.py')).read())

out = []
for c in cases:
    p = subprocess.run(['node', '/tmp/hogref/run.js', '/dev/stdin'], input=json.dumps(c['code']), capture_output=True, text=True)
    c2 = {"name": c["name"], "code": c["code"][2:]}
    if p.stderr.strip():
        c2["error"] = p.stderr.strip().replace('ERROR ', '', 1)
    else:
        c2["want"] = p.stdout[:-1] if p.stdout.endswith('\n') else p.stdout
    out.append(c2)
json.dump(out, open(sys.argv[1], 'w'), indent=1)
print(len(out), "cases")
