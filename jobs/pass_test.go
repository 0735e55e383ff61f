package jobs

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"testing"
)

// The digest covers every decision, as the JSON of the whole slice would;
// the audited list stops at decisionsListed and stays valid JSON.
func TestDecisionLogDigestsAllAndListsTheFirst(t *testing.T) {
	for _, n := range []int{0, 1, decisionsListed, decisionsListed + 7} {
		var d decisionLog
		var all []notice
		for i := range n {
			no := notice{Account: fmt.Sprintf("ad:%d user%d", i, i), Action: ActionAmbiguous, Reason: `2 entries match ("a", "b")`}
			all = append(all, no)
			d.add(no, 1)
		}
		b, _ := json.Marshal(all)
		want := sha256.Sum256(b)
		if got := d.sum(); got != hex.EncodeToString(want[:]) {
			t.Errorf("%d decisions: digest %s, want that of json.Marshal", n, got)
		}
		if n == 0 {
			continue
		}
		var listed []notice
		if err := json.Unmarshal([]byte(d.list()), &listed); err != nil {
			t.Fatalf("%d decisions: list is not JSON: %v", n, err)
		}
		if len(listed) != min(n, decisionsListed) || listed[0] != all[0] || d.accounts != n {
			t.Errorf("%d decisions: listed %d, accounts %d", n, len(listed), d.accounts)
		}
	}
}
