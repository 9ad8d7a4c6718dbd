package file

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// checker compares a value with the Go type it will be decoded into, the way
// encoding/json with the Kubernetes strict options would, but reports every
// mismatch with its own line and path instead of stopping at the first.
type checker struct {
	fields map[reflect.Type]map[string]reflect.Type // per struct: JSON name -> field type
	report func(line int, path, msg string)
}

func newChecker() *checker {
	return &checker{fields: make(map[reflect.Type]map[string]reflect.Type)}
}

func (c *checker) check(v *value, t reflect.Type, path string) {
	jsonUnmarshaler := reflect.TypeFor[json.Unmarshaler]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v.kind == nullValue {
		return // null leaves a field at its zero value
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) {
		// Types such as metav1.Time and IntOrString parse themselves: ask them.
		u := reflect.New(t).Interface().(json.Unmarshaler)
		if err := u.UnmarshalJSON(appendJSON(nil, v)); err != nil {
			c.report(v.line, path, "invalid value: "+strings.TrimPrefix(err.Error(), "json: "))
		}
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() != 0 {
			c.report(v.line, path, "cannot decode into "+t.String())
		}
	case reflect.Struct:
		if v.kind != objectValue {
			c.mismatch(v, "an object", path)
			return
		}
		known := c.structFields(t)
		for _, f := range v.fields {
			ft, ok := known[f.name]
			if !ok {
				c.report(f.line, joinPath(path, f.name), "unknown field"+suggest(f.name, known))
				continue
			}
			c.check(f.val, ft, joinPath(path, f.name))
		}
	case reflect.Map:
		if v.kind != objectValue {
			c.mismatch(v, "an object", path)
			return
		}
		for _, f := range v.fields {
			c.checkMapKey(f, t.Key(), path)
			c.check(f.val, t.Elem(), joinPath(path, f.name))
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(jsonUnmarshaler) {
			if v.kind != stringValue {
				c.mismatch(v, "a base64 string", path)
				return
			}
			if _, err := base64.StdEncoding.DecodeString(v.text); err != nil {
				c.report(v.line, path, "invalid base64: "+err.Error())
			}
			return
		}
		fallthrough
	case reflect.Array:
		if v.kind != arrayValue {
			c.mismatch(v, "a list", path)
			return
		}
		for i, item := range v.items {
			c.check(item, t.Elem(), path+"["+strconv.Itoa(i)+"]")
		}
	case reflect.String:
		if v.kind != stringValue {
			c.mismatch(v, "a string", path)
		}
	case reflect.Bool:
		if v.kind != boolValue {
			c.mismatch(v, "true or false", path)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.kind != numberValue {
			c.mismatch(v, "an integer", path)
		} else if _, err := strconv.ParseInt(v.text, 10, t.Bits()); err != nil {
			c.report(v.line, path, intProblem(v.text, t, err))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.kind != numberValue {
			c.mismatch(v, "a non-negative integer", path)
		} else if _, err := strconv.ParseUint(v.text, 10, t.Bits()); err != nil {
			c.report(v.line, path, intProblem(v.text, t, err))
		}
	case reflect.Float32, reflect.Float64:
		if v.kind != numberValue {
			c.mismatch(v, "a number", path)
		} else if _, err := strconv.ParseFloat(v.text, t.Bits()); err != nil {
			c.report(v.line, path, v.text+" is out of range")
		}
	default:
		c.report(v.line, path, "cannot decode into "+t.String())
	}
}

func (c *checker) mismatch(v *value, want, path string) {
	c.report(v.line, path, "expected "+want+", got "+v.describe())
}

func intProblem(text string, t reflect.Type, err error) string {
	if ne := (*strconv.NumError)(nil); errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
		return text + " is out of range for " + t.Kind().String()
	}
	return "expected an integer, got the number " + text
}

// checkMapKey accepts the key kinds encoding/json decodes: strings and integers.
func (c *checker) checkMapKey(f field, kt reflect.Type, path string) {
	switch kt.Kind() {
	case reflect.String:
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, err := strconv.ParseInt(f.name, 10, kt.Bits()); err != nil {
			c.report(f.line, joinPath(path, f.name), "key must be an integer")
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, err := strconv.ParseUint(f.name, 10, kt.Bits()); err != nil {
			c.report(f.line, joinPath(path, f.name), "key must be a non-negative integer")
		}
	default:
		c.report(f.line, joinPath(path, f.name), "cannot decode a key into "+kt.String())
	}
}

// structFields lists the JSON names of t as encoding/json sees them: the
// json tag or the Go name, fields of untagged embedded structs promoted
// (TypeMeta and ObjectMeta are embedded with `json:",inline"`), a field of
// the outer struct winning over a promoted one of the same name.
func (c *checker) structFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := c.fields[t]; ok {
		return m
	}
	m := make(map[string]reflect.Type)
	var embedded []reflect.Type
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				embedded = append(embedded, et)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		m[name] = f.Type
	}
	for _, et := range embedded {
		for name, ft := range c.structFields(et) {
			if _, ok := m[name]; !ok {
				m[name] = ft
			}
		}
	}
	c.fields[t] = m
	return m
}

// suggest names a known field that differs from name only in case or by one
// edit, the usual typo.
func suggest(name string, known map[string]reflect.Type) string {
	best := ""
	for k := range known {
		if strings.EqualFold(k, name) || editDistance(k, name) == 1 {
			if best == "" || k < best {
				best = k
			}
		}
	}
	if best == "" {
		return ""
	}
	return " (did you mean " + strconv.Quote(best) + "?)"
}

// editDistance is the Levenshtein distance, enough for short field names.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
