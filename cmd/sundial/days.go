package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// daysValue is a duration flag that also takes whole days ("90d").
type daysValue time.Duration

func (d *daysValue) String() string {
	v := time.Duration(*d)
	if v%(24*time.Hour) == 0 {
		return strconv.Itoa(int(v/(24*time.Hour))) + "d"
	}
	return v.String()
}

func (d *daysValue) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 {
			return fmt.Errorf("%q: want a number of days such as 90d, or a duration such as 2160h", s)
		}
		*d = daysValue(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a number of days such as 90d, or a duration such as 2160h", s)
	}
	*d = daysValue(v)
	return nil
}

func (d *daysValue) Type() string { return "days" }
