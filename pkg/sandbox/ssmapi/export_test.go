package ssmapi

import "regexp"

// regexpCompile lets tests compile document patterns.
func regexpCompile(p string) (*regexp.Regexp, error) { return regexp.Compile(p) }
