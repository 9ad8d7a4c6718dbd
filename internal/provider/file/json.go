package file

import (
	"encoding/json"
)

// appendJSON encodes v. The result is what the API server would store: the
// typed decoder and custom UnmarshalJSON methods read it.
func appendJSON(b []byte, v *value) []byte {
	switch v.kind {
	case nullValue:
		return append(b, "null"...)
	case boolValue, numberValue:
		return append(b, v.text...)
	case stringValue:
		return appendString(b, v.text)
	case objectValue:
		b = append(b, '{')
		for i, f := range v.fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f.name)
			b = append(b, ':')
			b = appendJSON(b, f.val)
		}
		return append(b, '}')
	default:
		b = append(b, '[')
		for i, item := range v.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, item)
		}
		return append(b, ']')
	}
}

func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		// encoding/json escapes these (HTML-safe and invalid UTF-8 too);
		// names and values of manifests seldom have any.
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
