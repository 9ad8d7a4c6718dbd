package file

import (
	"fmt"
	"reflect"
	"strconv"

	"gopkg.in/yaml.v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
)

// document reads one YAML document of file.
func (l *loader) document(file string, doc *yaml.Node) {
	conv := newConverter()
	v := conv.convert(doc, "", 0, false)
	line := v.line
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		line = doc.Content[0].Line
	}
	if v.kind == nullValue && len(conv.problems) == 0 {
		return // empty document ("---" twice, or only comments)
	}
	obj := describeObject(v)
	for _, p := range conv.problems {
		l.errs = append(l.errs, &Error{File: file, Line: p.line, Object: obj, Field: p.path, Message: p.msg})
	}
	// Even a document with YAML-level problems is type-checked, so one run
	// reports all its mistakes; it is never decoded.
	l.object(file, line, v, len(conv.problems) > 0)
}

// describeObject names an object for messages as well as its (maybe broken)
// content allows: "Kind namespace/name".
func describeObject(v *value) string {
	if v.kind != objectValue {
		return ""
	}
	kind := v.str("kind")
	if kind == "" {
		return ""
	}
	name, ns := "(no name)", ""
	if meta := v.get("metadata"); meta != nil && meta.kind == objectValue {
		if n := meta.str("name"); n != "" {
			name = n
		}
		ns = meta.str("namespace")
	}
	if spec, ok := lookupKind(v.str("apiVersion"), kind); ok && spec.namespaced && ns == "" {
		ns = "default"
	} else if ok && !spec.namespaced {
		ns = ""
	}
	return objectKey(kind, ns, name)
}

// object reads one object (or a List of them) that starts at line. A broken
// object (its YAML had problems already reported) is only checked.
func (l *loader) object(file string, line int, v *value, broken bool) {
	fail := func(obj, path, msg string) {
		l.errs = append(l.errs, &Error{File: file, Line: line, Object: obj, Field: path, Message: msg})
	}
	if v.kind != objectValue {
		if !broken {
			fail("", "", "expected an object (a mapping with apiVersion and kind), got "+v.describe())
		}
		return
	}
	apiVersion, kind := v.get("apiVersion"), v.get("kind")
	if broken && (apiVersion == nil || apiVersion.kind != stringValue || kind == nil || kind.kind != stringValue) {
		return // already reported, and nothing more to check against
	}
	switch {
	case apiVersion == nil || apiVersion.kind != stringValue || apiVersion.text == "":
		fail(describeObject(v), "apiVersion", "missing or not a string")
		return
	case kind == nil || kind.kind != stringValue || kind.text == "":
		fail("", "kind", "missing or not a string")
		return
	}
	if apiVersion.text == "v1" && kind.text == "List" {
		l.list(file, v, broken)
		return
	}
	spec, ok := lookupKind(apiVersion.text, kind.text)
	if !ok {
		msg := fmt.Sprintf("%s %s is not a kind RAUTA reads, ignored", apiVersion.text, kind.text)
		if want := supportedVersion(kind.text); want != "" {
			msg = fmt.Sprintf("%s %s is not supported (use apiVersion %s), ignored", apiVersion.text, kind.text, want)
		}
		l.warnings = append(l.warnings, Warning{File: file, Line: line, Message: msg})
		return
	}

	id := describeObject(v)
	before := len(l.errs)
	obj := spec.newObject()
	l.checker.report = func(at int, path, msg string) {
		l.errs = append(l.errs, &Error{File: file, Line: at, Object: id, Field: path, Message: msg})
	}
	l.checker.check(v, reflect.TypeOf(obj), "")
	if broken || len(l.errs) > before {
		return
	}
	// The checker mirrors the strict decoder; the decoder has the last word.
	strict, err := kjson.UnmarshalStrict(appendJSON(nil, v), obj)
	if err != nil {
		fail(id, "", "decode: "+err.Error())
		return
	}
	for _, e := range strict {
		fail(id, "", "decode: "+e.Error())
	}
	if len(strict) > 0 {
		return
	}

	if obj.GetName() == "" {
		fail(id, "metadata.name", "required")
		return
	}
	if spec.kind == "HTTPRoute" {
		validateHTTPRoute(v, l.checker.report)
		if len(l.errs) > before {
			return
		}
	}
	l.normalize(file, line, spec, obj)
	key := objectKey(spec.kind, obj.GetNamespace(), obj.GetName())
	here := file + ":" + strconv.Itoa(line)
	if first, dup := l.seen[key]; dup {
		fail(key, "", "defined twice, first at "+first)
		return
	}
	l.seen[key] = here
	spec.add(l.res, obj)
}

// normalize applies what the API server would before storing obj.
func (l *loader) normalize(file string, line int, spec kindSpec, obj object) {
	obj.GetObjectKind().SetGroupVersionKind(schema.FromAPIVersionAndKind(spec.apiVersion, spec.kind))
	switch {
	case spec.namespaced && obj.GetNamespace() == "":
		obj.SetNamespace("default")
	case !spec.namespaced && obj.GetNamespace() != "":
		l.warnings = append(l.warnings, Warning{File: file, Line: line,
			Message: fmt.Sprintf("%s %s is cluster-scoped; metadata.namespace %q ignored", spec.kind, obj.GetName(), obj.GetNamespace())})
		obj.SetNamespace("")
	}
	// Status conditions carry observedGeneration; 0 would look stale.
	if obj.GetGeneration() == 0 {
		obj.SetGeneration(1)
	}
	if s, ok := obj.(*corev1.Secret); ok && len(s.StringData) > 0 {
		// As the API server does: stringData is write-only and wins over data.
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
		s.StringData = nil
	}
}

// list reads a v1 List: its items are objects in their own right.
func (l *loader) list(file string, v *value, broken bool) {
	for _, f := range v.fields {
		switch f.name {
		case "apiVersion", "kind":
		case "metadata":
			l.checker.report = func(at int, path, msg string) {
				l.errs = append(l.errs, &Error{File: file, Line: at, Object: "List", Field: path, Message: msg})
			}
			l.checker.check(f.val, reflect.TypeFor[metav1.ListMeta](), "metadata")
		case "items":
			if f.val.kind == nullValue {
				continue
			}
			if f.val.kind != arrayValue {
				l.errs = append(l.errs, &Error{File: file, Line: f.line, Object: "List", Field: "items", Message: "expected a list, got " + f.val.describe()})
				continue
			}
			for _, item := range f.val.items {
				l.object(file, item.line, item, broken)
			}
		default:
			l.errs = append(l.errs, &Error{File: file, Line: f.line, Object: "List", Field: f.name, Message: "unknown field"})
		}
	}
}
