package file

import (
	"strconv"
	"strings"
)

// Warning is something Load skipped without failing, such as a document of a
// kind RAUTA does not read.
type Warning struct {
	File    string
	Line    int
	Message string
}

func (w Warning) String() string {
	return w.File + ":" + strconv.Itoa(w.Line) + ": " + w.Message
}

// Error is one problem in the input. Load returns all of them joined with
// errors.Join; errors.As finds the first.
type Error struct {
	File string
	// Line is the line of the offending key or value, else the first line
	// of the document.
	Line int
	// Object is "Kind namespace/name" ("Kind name" for cluster-scoped kinds),
	// empty when the problem is not inside one object.
	Object string
	// Field is the path of the offending field, e.g. "spec.listeners[0].port".
	Field   string
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Object != "" {
		b.WriteString(e.Object)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}
