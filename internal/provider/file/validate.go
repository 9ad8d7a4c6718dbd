package file

import (
	"fmt"
	"regexp"
)

// validateHTTPRoute rejects what no HTTPRoute may hold: regular expressions
// that RE2 cannot compile. In a cluster such a rule becomes a status
// condition, and the route stops serving; from files the whole change is
// refused instead, with file and line, so that the last good configuration
// keeps serving while the user fixes the typo.
func validateHTTPRoute(v *value, report func(line int, path, msg string)) {
	rules := v.get("spec").get("rules")
	for i, rule := range rules.list() {
		for j, m := range rule.get("matches").list() {
			at := fmt.Sprintf("spec.rules[%d].matches[%d]", i, j)
			if p := m.get("path"); p != nil && p.str("type") == "RegularExpression" {
				checkRegex(p.get("value"), at+".path.value", report)
			}
			for k, h := range m.get("headers").list() {
				if h.str("type") == "RegularExpression" {
					checkRegex(h.get("value"), fmt.Sprintf("%s.headers[%d].value", at, k), report)
				}
			}
			for k, q := range m.get("queryParams").list() {
				if q.str("type") == "RegularExpression" {
					checkRegex(q.get("value"), fmt.Sprintf("%s.queryParams[%d].value", at, k), report)
				}
			}
		}
	}
}

func checkRegex(v *value, path string, report func(line int, path, msg string)) {
	if v == nil || v.kind != stringValue {
		return
	}
	if _, err := regexp.Compile(v.text); err != nil {
		report(v.line, path, "invalid regular expression: "+err.Error())
	}
}
