package adtest

import "testing"

// FuzzCompileFilter feeds client filters to the fake's filter engine: any
// string either fails to compile or yields a matcher that runs without
// panicking on every entry.
func FuzzCompileFilter(f *testing.F) {
	for _, s := range []string{
		"(objectClass=*)",
		"(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
		"(memberOf:1.2.840.113556.1.4.1941:=CN=All Staff,OU=Groups,OU=Corp,DC=corp,DC=example,DC=test)",
		"(member:1.2.840.113556.1.4.1941:=CN=Erin Evans,OU=Sales,OU=Staff,OU=Corp,DC=corp,DC=example,DC=test)",
		"(|(primaryGroupID=513)(sAMAccountName=a*b*c)(uSNChanged>=5)(uSNChanged<=2)(cn~=x))",
		"(objectSid=\\01\\02\\00\\00\\00\\00\\00\\05\\20\\00\\00\\00\\20\\02\\00\\00)",
		"(:1.2.840.113556.1.4.803:=2)",
		"(&",
	} {
		f.Add(s)
	}
	d := Generate(1, 5)
	f.Fuzz(func(t *testing.T, filter string) {
		d.mu.RLock()
		defer d.mu.RUnlock()
		m, err := d.compileFilter(filter)
		if err != nil {
			return
		}
		for _, e := range d.entries {
			m(e)
		}
	})
}

func TestCompileFilterRejects(t *testing.T) {
	d := Generate(1, 0)
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, s := range []string{"", "(", "objectClass=user", "(x:9.9.9:=1)"} {
		if _, err := d.compileFilter(s); err == nil {
			t.Errorf("compileFilter(%q) accepted", s)
		}
	}
}
