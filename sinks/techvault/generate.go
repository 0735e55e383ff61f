package techvault

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/msp-tools/autoimport/sinks"
)

var (
	givenNames = []string{"Jane", "John", "Maria", "Ahmed", "Wei", "Olga", "Liam", "Aisha", "Carlos", "Noor", "Pieter", "Yuki", "Fatima", "Lucas", "Emma", "Ravi"}
	surnames   = []string{"Doe", "Smith", "Garcia", "Khan", "Chen", "Ivanova", "Murphy", "Okafor", "Silva", "Haddad", "de Vries", "Tanaka", "Rahman", "Martin", "Jensen", "Patel"}
)

// GenerateEntries makes n realistic entries for one customer,
// deterministically from seed: usernames like "jdoe12" in the categories
// of AD, Microsoft 365 and local accounts, some without a category (the
// possible duplicates technicians meet). The same arguments always give
// the same entries, ids included; none has a password.
func GenerateEntries(customer string, n int, seed uint64) []Entry {
	r := rand.New(rand.NewPCG(seed, 0x7ec4))
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]Entry, 0, n)
	for i := range n {
		given, sur := givenNames[r.IntN(len(givenNames))], surnames[r.IntN(len(surnames))]
		user := fmt.Sprintf("%s%s%d", strings.ToLower(given[:1]), strings.ToLower(strings.ReplaceAll(sur, " ", "")), i)
		var source, category string
		switch k := r.IntN(20); {
		case k < 11:
			source = "ad"
		case k < 17:
			source = "m365"
			user += "@" + strings.ToLower(customer) + ".example"
		case k < 19:
			source = "local"
		default:
			source = "ad" // no category
		}
		if k := r.IntN(20); k != 0 {
			names := sinks.CategoryNames(source)
			category = names[r.IntN(len(names))]
		}
		out = append(out, Entry{
			ID:        fmt.Sprintf("%016x%016x", seed, uint64(i)),
			Customer:  customer,
			Name:      fmt.Sprintf("%s %s (%s)", given, sur, sourceLabel(source)),
			Username:  user,
			Category:  category,
			CreatedAt: base.Add(time.Duration(r.IntN(365*24)) * time.Hour),
		})
	}
	return out
}

func sourceLabel(source string) string {
	switch source {
	case "m365":
		return "Microsoft 365"
	case "local":
		return "Local Account"
	}
	return "Active Directory"
}
