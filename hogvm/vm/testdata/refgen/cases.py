# arithmetic
for code, nm in [(6,'plus'),(7,'minus'),(8,'mul'),(9,'div'),(10,'mod')]:
    for l, r in [(7, 2), (-7, 3), (1, 0), (0, 0), ('3', 4), ('a', 1), (None, 5), (True, 2), (F(1.5), F(0.25)), ([5], 1), ([], 1), (D([('a',1)]), 1), ('', 2), (' 12 ', 1), ('0x1f', 1), ('1e3', 1), ('Infinity', 1)]:
        case(f'op_{nm}_{l!r}_{r!r}', op(code, l, r))
case('float_print_small', op(9, 1, 3))
case('float_print_big', op(8, F(1e21), 1))
case('float_print_tiny', op(9, 1, 10000000))
case('float_neg_zero', op(8, -1, 0))
case('int_precision', op(6, 9007199254740992, 1))
# comparisons
for code, nm in [(11,'eq'),(12,'neq'),(13,'gt'),(14,'gte'),(15,'lt'),(16,'lte')]:
    for l, r in [(1, 1), (1, F(1.0)), (1, '1'), ('1.0', 1), ('abc', 1), (True, 1), (2, True), (True, 'true'), ('false', False), (None, None), (None, 0), (0, None), ('a', 'b'), ('b', 'a'), ('B', 'a'), ([1,2], [1,2]), ([1,2], [1,3]), ([1], [1,0]), ([1,'a'], [1,'a']), (D([]), D([])), ('2024-01-01', Raw(*call('toDateTime','2024-01-01T00:00:00Z').code)), ('10', '9'), (None, 'a')]:
        case(f'op_{nm}_{l!r}_{r!r}', op(code, l, r))
# like / regex / in
for code, nm in [(17,'like'),(18,'ilike'),(19,'notlike'),(20,'notilike')]:
    for s, pat in [('banana', 'n'), ('banana', '%an%'), ('banana', 'b_n%'), ('Banana', 'ban%'), ('a.c', 'a.c'), ('abc', 'a.c'), ('x(y)', '%(y)'), (None, 'null'), (12, '1%'), ('a', 'b')]:
        case(f'op_{nm}_{s!r}_{pat!r}', op(code, s, pat))
for code, nm in [(23,'re'),(24,'nre'),(25,'ire'),(26,'nire')]:
    for s, pat in [('hello', 'l+'), ('hello', '^h.*o$'), ('HELLO', 'hel'), ('hello', 'x'), (None, 'x'), ('', 'x'), ('abc', ''), ('a\nb', 'a.b'), ('abc', '(?i)B')]:
        case(f'op_{nm}_{s!r}_{pat!r}', op(code, s, pat))
for code, nm in [(21,'in'),(22,'notin')]:
    for n, h in [(1, [1,2]), (F(1.0), [1,2]), ('1', [1,2]), ('a', 'car'), ('x', 'car'), (None, [None]), (2, T([1,2])), (1, '123')]:
        case(f'op_{nm}_{n!r}_{h!r}', op(code, n, h))
case('op_in_dict_error', op(21, 'a', D([('a',1)])))
case('op_in_null_error', op(21, 'a', None))
# logic
case('and_all', Raw(*emit(1)+emit('x')+emit([])+[3,3]))
case('and_zero', Raw(*emit(1)+emit(0)+[3,2]))
case('or_none', Raw(*emit(0)+emit('')+emit(None)+[4,3]))
case('or_one', Raw(*emit(0)+emit(D([]))+[4,2]))
case('not_empty_str', Raw(*emit('')+[5]))
case('not_arr', Raw(*emit([])+[5]))
# properties
for obj, key in [([10,20,30], 1), ([10,20,30], -1), ([10,20,30], 4), ([10,20,30], -4), ([10,20,30], 'length'), (T([1,2]), 2), (D([('a',1),(1,'one')]), 'a'), (D([('a',1),(1,'one')]), 1), (D([('1','s')]), 1), ('abc', 1), (None, 'x'), (5, 'x'), ([1,2], F(1.5))]:
    case(f'getprop_{obj!r}_{key!r}', Raw(*emit(obj)+emit(key)+[45]))
    case(f'getpropn_{obj!r}_{key!r}', Raw(*emit(obj)+emit(key)+[48]))
case('getprop_zero', Raw(*emit([1])+emit(0)+[45]))
case('getprop_error_fields', Raw(*call('Error','msg', D([('a',1)])).code, *emit('payload'), 45))
case('getprop_error_type', Raw(*call('RetryError','msg').code, *emit('type'), 45))
case('nullish_jump', Raw(*emit(None)+[47, 3, 35, 33, 7]))
case('nullish_jump2', Raw(*emit(3)+[47, 3, 35, 33, 7]))
# printing
for v in ["it's", 'a\nb\tc\\d\x00e\x08\x0c\r\x0b', 'ünï', [1,'a',[2,None],True], T([1]), T([]), T([1,2]), D([('k','v'),(3,'x'),(None, [1])]), F(2.0), F(0.1)+0, 1e-7, 123456789012345680000.0, F(1e21), -0.5, D([]), []]:
    case(f'print_{v!r}', v)
case('print_str_raw', Raw(*emit('raw')))
# STL
strs = ['hello', '', None, 'ÄbC😀', '  pad  ', 'a,b,,c']
for f in ['length','lower','upper','reverse','trim','trimLeft','trimRight','empty','notEmpty','toString','toUUID','typeof','isNull','isNotNull','base64Encode','encodeURLComponent','md5Hex','sha256Hex','sha1Hex','toInt','toFloat','keys','values','jsonStringify','isValidJSON']:
    for s in strs:
        case(f'{f}({s!r})', call(f, s))
for f in ['length','empty','notEmpty','typeof','toString','keys','values','jsonStringify','toInt','toFloat','arrayReverse','arraySort','arrayReverseSort','arrayPopBack','arrayPopFront','arrayStringConcat']:
    for v in [[3,1,2], [10,9,1,None,'b','a'], T([1,2]), D([('b',1),('a',2)]), 0, F(3.9), -2, True, [], D([])]:
        case(f'{f}({v!r})', call(f, v))
for args in [('x', 'y'), ('a', None, 1, F(2.5), True, [1], D([('a','b')]))]:
    case(f'concat{args!r}', call('concat', *args))
for args in [(' ', 'a b c'), (',', 'a,b,,c'), (',', 'a,b,c', 2), ('', 'abc'), ('x', '')]:
    case(f'splitByString{args!r}', call('splitByString', *args))
for args in [('hello', 2), ('hello', 2, 3), ('hello', 0), ('hello', 10), ('hello', 1, -1), (5, 1), ('😀abc', 2, 2)]:
    case(f'substring{args!r}', call('substring', *args))
for args in [('hello', 'l'), ('hello', 'z'), ('Hello', 'h'), (None, 'x'), ('a😀b', 'b')]:
    case(f'position{args!r}', call('position', *args))
    case(f'positionCI{args!r}', call('positionCaseInsensitive', *args))
for args in [('aXbXc', 'X', 'Y'), ('aaa', 'a', '$&$&'), ('abc', '', '-'), ('abc', 'b', "$'|$`")]:
    case(f'replaceOne{args!r}', call('replaceOne', *args))
    case(f'replaceAll{args!r}', call('replaceAll', *args))
for args in [('xxaxx', 'x'), ('xxaxx', 'xx'), ('  a  ',), ('aa', 'a')]:
    for f in ['trim','trimLeft','trimRight']:
        case(f'{f}{args!r}', call(f, *args))
for args in [('abc', 'b'), ('abc', '^b'), (None, 'a')]:
    case(f'match{args!r}', call('match', *args))
for args in [('v1.2.3', r'(\d+)\.(\d+)'), ('abc', 'b+'), ('abc', 'x'), (None, 'x')]:
    case(f'extractRegex{args!r}', call('extractRegex', *args))
for args in [('Hello World', ['foo','WORLD']), ('abc', ['x']), (None, ['a']), ('abc', 'a')]:
    case(f'multiSearch{args!r}', call('multiSearchAnyCaseInsensitive', *args))
for args in [('abc','ab'), ('abc','bc'), (1,'1')]:
    case(f'startsWith{args!r}', call('startsWith', *args))
for s in ['aGVsbG8=', 'aGVsbG8', 'aGV sbG8', '!!', '8J+YgA==', '_-8']:
    case(f'base64Decode({s!r})', call('base64Decode', s))
    case(f'tryBase64Decode({s!r})', call('tryBase64Decode', s))
for s in ['a b&c=d/é', "-_.!~*'()", '%']:
    case(f'encodeURL({s!r})', call('encodeURLComponent', s))
for s in ['a%20b', '%E2%82%AC', '%', '%zz', '%C3', '+']:
    case(f'decodeURL({s!r})', call('decodeURLComponent', s))
    case(f'tryDecodeURL({s!r})', call('tryDecodeURLComponent', s))
for enc in ['hex', 'base64', 'base64url', 'binary']:
    for f in ['md5', 'sha1', 'sha256']:
        case(f'{f}_{enc}', call(f, 'hello', enc))
    case(f'sha256HmacChain_{enc}', call('sha256HmacChain', ['key', 'msg', 'more'], enc))
    case(f'sha1HmacChain_{enc}', call('sha1HmacChain', ['key', 'msg'], enc))
case('sha256HmacChainHex', call('sha256HmacChainHex', ['secret', 'payload']))
case('sha1HmacChainHex', call('sha1HmacChainHex', ['secret', 'payload']))
case('md5_null', call('md5Hex', None))
case('hmac_short', call('sha256HmacChainHex', ['a']))
# json
for s in ['{"a": 1, "b": [1, 2.5, "x"], "c": null}', '{"b": 1, "2": 2, "1": 3, "a": 4}', '[1, {"x": true}]', '"str"', '12', 'null', '{"__hogDateTime__": true, "dt": 1.5, "zone": "UTC"}', '{"__hogDate__": true, "year": 2024, "month": 1, "day": 2}', '{"__hogError__": true, "type": "E", "message": "m"}', '{"a": 1, "a": 2}']:
    case(f'jsonParse({s!r})', call('jsonParse', s))
case('jsonParse_invalid', call('jsonParse', '{bad'))
for v in [D([('b',1),('a',[1,2,D([])]),('2',None),(1,True)]), [None, F(1.5), 'q"\n\u2028<'], T([1,2]), D([('x', D([('y', [])]))])]:
    case(f'jsonStringify({v!r})', call('jsonStringify', v))
    case(f'jsonStringify2({v!r})', call('jsonStringify', v, 2))
case('jsonStringify_date', call('jsonStringify', Raw(*call('toDateTime', 1.5).code)))
case('jsonStringify_error', call('jsonStringify', Raw(*call('Error', 'm', D([('a',1)])).code)))
case('jsonStringify_fn', call('jsonStringify', Raw(32, 'concat', 1, 1)))
j = '{"a": {"b": [10, 20, {"c": "x"}]}, "t": true, "n": "12.5abc", "s": "str"}'
for path in [('a',), ('a','b'), ('a','b',2), ('a','b',-1), ('a','b',3,'c'), ('a','b',4), ('t',), ('n',), ('s',), ('zz',), ()]:
    for f in ['JSONHas','JSONLength','JSONExtractBool','JSONExtractInt','JSONExtractFloat','JSONExtractString','JSONExtractArrayRaw']:
        case(f'{f}{path!r}', call(f, j, *path))
    case(f'JSONExtract{path!r}', call('JSONExtract', j, *path, 'String'))
case('JSONHas_dict', call('JSONHas', D([('a', D([('b', 1)]))]), 'a', 'b'))
case('JSONLength_bad', call('JSONLength', '{bad', 'a'))
case('JSONExtractBool_bad', call('JSONExtractBool', '{bad'))
case('isValidJSON_bad', call('isValidJSON', '{bad'))
# arrays / dicts
for args in [([1,2,3], 2), ([1,2,3], 5), ([F(1.0)], 1), ('abc', 'a'), (None, 1)]:
    case(f'indexOf{args!r}', call('indexOf', *args))
    case(f'has{args!r}', call('has', *args))
for args in [(1, [1,2]), (3, T([3])), ('a', 'abc'), (1, None)]:
    case(f'in{args!r}', call('in', *args))
for f in ['arrayPushBack','arrayPushFront']:
    for args in [([1,2], 3), (None, 1), (T([1]), 2)]:
        case(f'{f}{args!r}', call(f, *args))
for args in [([1,None,'a',2.5], '-'), ([1,2],), ('notarr', ','), ([[1,2],[3]], ';')]:
    case(f'arrayStringConcat{args!r}', call('arrayStringConcat', *args))
for args in [(3,), (2,5), (0,), (-1,), (F(2.7),), (5,2)]:
    case(f'range{args!r}', call('range', *args))
# logic / misc
for args in [(None, None, 3), (None,), (0, 1)]:
    case(f'coalesce{args!r}', call('coalesce', *args))
case('ifNull', call('ifNull', None, 2))
case('ifNull2', call('ifNull', 1, 2))
case('assumeNotNull_err', call('assumeNotNull', None))
case('if', call('if', 0, 'a', 'b'))
case('multiIf', call('multiIf', False, 1, True, 2, 3))
case('multiIf_default', call('multiIf', False, 1, 0, 2, 3))
for f in ['equals','notEquals','greater','greaterOrEquals','less','lessOrEquals']:
    for args in [(1, '1'), (1, F(1.0)), ('a', 'b'), (2, 1), (None, 0)]:
        case(f'{f}{args!r}', call(f, *args))
for args in [(1, 2), ('a', 'b'), ('1', 2), (None, 1)]:
    case(f'plus{args!r}', call('plus', *args))
    case(f'minus{args!r}', call('minus', *args))
    case(f'min2{args!r}', call('min2', *args))
for v in [F(2.5), F(-2.5), F(2.4), F(-0.5), '3.7', None]:
    case(f'round({v!r})', call('round', v))
    case(f'floor({v!r})', call('floor', v))
case('not', call('not', 0)); case('and', call('and', 1, 'a')); case('or', call('or', 0, None))
for args in [('boom',), (), ('boom', D([('code', 1)])), ('', None)]:
    case(f'Error{args!r}', call('Error', *args))
    case(f'RetryError{args!r}', call('RetryError', *args))
case('HogError', call('HogError', 'Custom', 'msg', D([('x', 1)])))
case('HogError_null_type', call('HogError', None, None))
case('tuple', call('tuple', 1, 'a'))
case('tuple0', call('tuple'))
for v in [None, True, 1, F(1.5), 'a', [1], T([1]), D([]), Raw(*call('Error','x').code), Raw(*call('toDate','2024-01-02').code), Raw(*call('toDateTime','2024-01-02').code), Raw(32, 'concat', 1, 1), Raw(*emit(D([('__hx_ast','x')])))]:
    case(f'typeof({v!r})', call('typeof', v))
# ip
for args in [('10.0.0.1', '10.0.0.0/8'), ('10.0.0.1', '11.0.0.0/8'), ('::1', '::/0'), ('1.2.3.04', '1.2.3.0/24'), ('abc', '1.0.0.0/8')]:
    case(f'ip{args!r}', call('isIPAddressInRange', *args))
# dates
dt = Raw(*call('toDateTime', '2024-03-15T13:45:30.123Z').code)
dtz = Raw(*call('toTimeZone', dt, 'America/New_York').code)
d = Raw(*call('toDate', '2024-02-29').code)
for name, v in [('dt', dt), ('dtz', dtz), ('d', d)]:
    for f in ['toString','toInt','toFloat','toYear','toMonth','toYYYYMM','toStartOfDay','toStartOfHour','toStartOfMonth','toStartOfWeek','toUnixTimestamp','toUnixTimestampMilli','typeof','keys','values']:
        case(f'{f}({name})', call(f, v))
    for unit in ['second','minute','hour','day','week','month','year']:
        case(f'dateAdd({unit},{name})', call('dateAdd', unit, 3, v))
        case(f'dateAdd_neg({unit},{name})', call('dateAdd', unit, -13, v))
        case(f'dateDiff({unit},{name})', call('dateDiff', unit, v, Raw(*call('toDateTime', '2025-07-01T00:00:00Z').code)))
    case(f'addDays({name})', call('addDays', v, 20))
for unit in ['year','month','day','hour','minute']:
    case(f'dateTrunc({unit})', call('dateTrunc', unit, dtz))
for fmt in ['%Y-%m-%d %H:%i:%S', '%a %b %e %j %V %u %w %W %M %p %r %R %T %z %%', '%f %Q', 'plain %x text', '%']:
    case(f'formatDateTime({fmt!r})', call('formatDateTime', dtz, fmt))
    case(f'formatDateTimeZ({fmt!r})', call('formatDateTime', dt, fmt, 'Asia/Kolkata'))
for s in ['2024-01-02', '2024-01-02T03:04', '2024-01-02 03:04:05', '2024-01-02T03:04:05.123456Z', '2024-01-02T03:04:05+05:30', '2024-01-02T03:04:05-0800', '2024-13-01', '0000-01-01', '2024', ' 2024-01-02 ', '2023-02-29']:
    case(f'toDateTime({s!r})', call('toDateTime', s))
    case(f'toDateTimeZ({s!r})', call('toDateTime', s, 'Europe/Paris'))
    case(f'toUnixTimestamp({s!r})', call('toUnixTimestamp', s))
case('toDate_num', call('toDate', 1700000000))
case('fromUnixTimestamp', call('fromUnixTimestamp', 1700000000.5))
case('fromUnixTimestampMilli', call('fromUnixTimestampMilli', 1700000000500))
case('toIntervalDay', call('toIntervalDay', 5))
case('toDateTime_num_zone', call('toDateTime', 1700000000, 'Asia/Tokyo'))
case('toString_dt_tokyo', call('toString', call('toDateTime', 1700000000, 'Asia/Tokyo')))
case('dt_compare', op(13, dt, d))
case('dt_eq_str', op(11, Raw(*call('toDateTime','2024-01-02').code), '2024-01-02T00:00:00Z'))
case('dt_print', call('toDateTime', 1700000000))
case('formatDateTime_notdt', call('formatDateTime', 'x', '%Y'))
# arity
case('arity_min', call('concat'))
case('arity_max', call('length', 1, 2))
case('arity_bstl', call('arrayMap', 1))
case('unknown_fn', call('nope', 1))
# bytecode stl
lam = [52, 'lambda', 1, 0, 5, 33, 2, 36, 0, 8, 38, 53, 0]
case('arrayMap', Raw(*lam, *emit([1,2,3]), 2, 'arrayMap', 2))
case('arrayFilter', Raw(52, 'lambda', 1, 0, 6, 33, 1, 36, 0, 13, 38, 53, 0, *emit([0,1,2,3]), 2, 'arrayFilter', 2))
case('arrayExists', Raw(52, 'lambda', 1, 0, 6, 33, 2, 36, 0, 11, 38, 53, 0, *emit([1,2,3]), 2, 'arrayExists', 2))
case('arrayCount', Raw(52, 'lambda', 1, 0, 6, 33, 1, 36, 0, 13, 38, 53, 0, *emit([0,1,2,3]), 2, 'arrayCount', 2))
case('arrayReduce', Raw(52, 'lambda', 2, 0, 5, 36, 1, 36, 0, 6, 38, 53, 0, *emit([1,2,3]), *emit(10), 2, 'arrayReduce', 3))
case('arrayMap_dict', Raw(*lam, *emit(D([('a',1),('b',2)])), 2, 'arrayMap', 2))
case('sortableSemver', call('sortableSemver', 'v1.22.3-beta'))
case('sortableSemver_none', call('sortableSemver', 'abc'))
case('inCohort', call('inCohort', 2, [1,2]))
case('notInCohort', call('notInCohort', 2, [1,2]))
case('inCohort_null', call('inCohort', 2, None))
case('stl_value_call', Raw(*emit('aGk='), 32, 'base64Decode', 1, 1, 54, 1))
case('stl_value_print', Raw(32, 'base64Decode', 1, 1))
case('stl_value_padding', Raw(*emit(' x '), 32, 'trim', 1, 1, 54, 1))
