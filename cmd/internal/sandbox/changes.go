package sandbox

import (
	"fmt"
	"math"

	"github.com/msp-tools/autoimport/sources/ad/adtest"
	"github.com/msp-tools/autoimport/sources/m365/m365test"
)

// Hire adds new staff to every customer's directory, a share of its
// users (at least one): in Active Directory a user in the Sales OU and
// group (which the selections hold: All Staff, or Domain Users), in a
// cloud-only tenant a user in its All Staff group. The next run imports
// them; a directory read incrementally reads only them. round numbers the
// hires, so that several rounds add different people. It returns how
// many users it added in all.
func (e *Env) Hire(share float64, round int) (int, error) {
	n := max(1, int(math.Round(share*float64(e.opts.Accounts))))
	added := 0
	for _, c := range e.customers {
		for k := range n {
			name := fmt.Sprintf("hire%d-%d", round, k)
			display := fmt.Sprintf("New Hire %d-%d", round, k)
			mail := name + "@" + c.slug + ".example"
			switch {
			case c.dir != nil:
				base := c.dir.BaseDN
				ent := c.dir.AddUser(adtest.User{SAM: name, GivenName: "New", Surname: fmt.Sprintf("Hire %d-%d", round, k), DisplayName: display,
					CN: display, Mail: mail, UPN: name + "@" + c.slug + ".example.test", Parent: "OU=Sales,OU=Staff,OU=Corp," + base})
				if err := c.dir.AddMember("CN=Sales,OU=Groups,OU=Corp,"+base, ent.DN); err != nil {
					return added, fmt.Errorf("sandbox: hire in %s: %w", c.id, err)
				}
			case c.allStaff != "":
				t := e.Graph.Tenant(c.tenantID)
				upn := name + "@" + c.slug + ".onmicrosoft.com"
				id := t.AddUser(m365test.User{UserPrincipalName: upn, DisplayName: display, GivenName: "New", Surname: fmt.Sprintf("Hire %d-%d", round, k),
					Mail: mail, Licenses: []string{"c7df2760-2c81-4ef7-b578-5b5392b571df"}})
				t.AddMembers(c.allStaff, id)
			default:
				continue
			}
			added++
		}
	}
	return added, nil
}
