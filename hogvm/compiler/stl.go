package compiler

// stlNames are the functions every HogVM provides (HOG.md §6): native STL,
// the bytecode STL written in Hog, and print. A call of any other name must
// be a local, a captured variable, or a host function passed in
// Options.Functions.
var stlNames = []string{
	// types and conversion
	"toString", "toUUID", "toInt", "toFloat", "toDate", "toDateTime", "tuple", "typeof",
	// null and logic
	"isNull", "isNotNull", "ifNull", "coalesce", "assumeNotNull", "if", "multiIf", "not", "and", "or",
	// comparison and math
	"equals", "notEquals", "greater", "greaterOrEquals", "less", "lessOrEquals",
	"plus", "minus", "min2", "max2", "floor", "round", "range", "randomFloat", "generateUUIDv4",
	// strings
	"concat", "length", "empty", "notEmpty", "lower", "upper", "reverse", "trim", "trimLeft",
	"trimRight", "splitByString", "replaceOne", "replaceAll", "position", "positionCaseInsensitive",
	"substring", "startsWith", "like", "ilike", "notLike", "notILike", "match", "extractRegex",
	"multiSearchAnyCaseInsensitive", "encodeURLComponent", "decodeURLComponent",
	"tryDecodeURLComponent", "base64Encode", "base64Decode", "tryBase64Decode",
	// JSON
	"jsonParse", "jsonStringify", "isValidJSON", "JSONHas", "JSONLength", "JSONExtractBool",
	"JSONExtractInt", "JSONExtractFloat", "JSONExtractString", "JSONExtractArrayRaw", "JSONExtract",
	// arrays and dicts
	"keys", "values", "indexOf", "has", "in", "arrayPushBack", "arrayPushFront", "arrayPopBack",
	"arrayPopFront", "arrayReverse", "arraySort", "arrayReverseSort", "arrayStringConcat",
	// dates
	"now", "today", "toUnixTimestamp", "fromUnixTimestamp", "toUnixTimestampMilli",
	"fromUnixTimestampMilli", "toTimeZone", "formatDateTime", "toYear", "toMonth", "toYYYYMM",
	"toStartOfDay", "toStartOfHour", "toStartOfMonth", "toStartOfWeek", "dateTrunc", "dateAdd",
	"dateDiff", "addDays", "extract", "toIntervalDay", "toIntervalHour", "toIntervalMinute",
	"toIntervalMonth",
	// crypto
	"md5Hex", "md5", "sha1Hex", "sha1", "sha256Hex", "sha256", "sha1HmacChainHex", "sha1HmacChain",
	"sha256HmacChainHex", "sha256HmacChain",
	// network
	"isIPAddressInRange",
	// errors
	"Error", "RetryError", "NotImplementedError", "HogError",
	// output and other
	"print", "run", "sleep", "import",
	// bytecode STL
	"arrayMap", "arrayFilter", "arrayExists", "arrayCount", "arrayReduce", "inCohort",
	"notInCohort", "sortableSemver",
}
