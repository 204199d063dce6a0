package compiler

// isSTL reports whether name is a function every HogVM provides (HOG.md
// §6): native STL, the bytecode STL written in Hog, and print. A call of
// any other name must be a local, a captured variable, or a host function
// passed in Options.Functions.
func isSTL(name string) bool {
	switch name {
	// types and conversion
	case "toString", "toUUID", "toInt", "toFloat", "toDate", "toDateTime", "tuple", "typeof":
		return true
	// null and logic
	case "isNull", "isNotNull", "ifNull", "coalesce", "assumeNotNull", "if", "multiIf", "not", "and", "or":
		return true
	// comparison and math
	case "equals", "notEquals", "greater", "greaterOrEquals", "less", "lessOrEquals":
		return true
	case "plus", "minus", "min2", "max2", "floor", "round", "range", "randomFloat", "generateUUIDv4":
		return true
	// strings
	case "concat", "length", "empty", "notEmpty", "lower", "upper", "reverse", "trim", "trimLeft":
		return true
	case "trimRight", "splitByString", "replaceOne", "replaceAll", "position", "positionCaseInsensitive":
		return true
	case "substring", "startsWith", "like", "ilike", "notLike", "notILike", "match", "extractRegex":
		return true
	case "multiSearchAnyCaseInsensitive", "encodeURLComponent", "decodeURLComponent":
		return true
	case "tryDecodeURLComponent", "base64Encode", "base64Decode", "tryBase64Decode":
		return true
	// JSON
	case "jsonParse", "jsonStringify", "isValidJSON", "JSONHas", "JSONLength", "JSONExtractBool":
		return true
	case "JSONExtractInt", "JSONExtractFloat", "JSONExtractString", "JSONExtractArrayRaw", "JSONExtract":
		return true
	// arrays and dicts
	case "keys", "values", "indexOf", "has", "in", "arrayPushBack", "arrayPushFront", "arrayPopBack":
		return true
	case "arrayPopFront", "arrayReverse", "arraySort", "arrayReverseSort", "arrayStringConcat":
		return true
	// dates
	case "now", "today", "toUnixTimestamp", "fromUnixTimestamp", "toUnixTimestampMilli":
		return true
	case "fromUnixTimestampMilli", "toTimeZone", "formatDateTime", "toYear", "toMonth", "toYYYYMM":
		return true
	case "toStartOfDay", "toStartOfHour", "toStartOfMonth", "toStartOfWeek", "dateTrunc", "dateAdd":
		return true
	case "dateDiff", "addDays", "extract", "toIntervalDay", "toIntervalHour", "toIntervalMinute":
		return true
	case "toIntervalMonth":
		return true
	// crypto
	case "md5Hex", "md5", "sha1Hex", "sha1", "sha256Hex", "sha256", "sha1HmacChainHex", "sha1HmacChain":
		return true
	case "sha256HmacChainHex", "sha256HmacChain":
		return true
	// network
	case "isIPAddressInRange":
		return true
	// errors
	case "Error", "RetryError", "NotImplementedError", "HogError":
		return true
	// output and other
	case "print", "run", "sleep", "import":
		return true
	// bytecode STL
	case "arrayMap", "arrayFilter", "arrayExists", "arrayCount", "arrayReduce", "inCohort":
		return true
	case "notInCohort", "sortableSemver":
		return true
	}
	return false
}
