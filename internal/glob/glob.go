// Package glob compiles shell-style globs to regular expressions, for tensor
// names (--include, --exclude) and for object keys in manifests.
package glob

import (
	"fmt"
	"regexp"
	"strings"
)

// Compile turns a glob into an anchored regular expression: ? is one
// character, [...] a class ([!...] negated), * any run of characters. With
// segments set, * and ? stay within one /-separated segment and ** (with
// "**/" also matching no segment at all) crosses them; without it, * and **
// cross everything, as tensor names separate their parts with '.' or '/'.
func Compile(g string, segments bool) (*regexp.Regexp, error) {
	star, one := ".*", "."
	if segments {
		star, one = "[^/]*", "[^/]"
	}
	var sb strings.Builder
	sb.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; c {
		case '*':
			if i+1 < len(g) && g[i+1] == '*' {
				for i+1 < len(g) && g[i+1] == '*' {
					i++
				}
				if segments && i+1 < len(g) && g[i+1] == '/' {
					i++
					sb.WriteString("(?:.*/)?")
				} else {
					sb.WriteString(".*")
				}
			} else {
				sb.WriteString(star)
			}
		case '?':
			sb.WriteString(one)
		case '[':
			j := strings.IndexByte(g[i:], ']')
			if j < 0 {
				return nil, fmt.Errorf("glob %q: unclosed [", g)
			}
			class := g[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			sb.WriteString("[" + class + "]")
			i += j
		default:
			sb.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	sb.WriteString("$")
	re, err := regexp.Compile(sb.String())
	if err != nil {
		return nil, fmt.Errorf("glob %q: %w", g, err)
	}
	return re, nil
}
