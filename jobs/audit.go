package jobs

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"iter"
	"strconv"
	"time"
)

// AuditEvent is one entry of the append-only, hash-chained audit log.
type AuditEvent struct {
	ID       int64     `json:"id" db:"id"`
	At       time.Time `json:"at" db:"-"`
	Actor    string    `json:"actor" db:"actor"`
	Action   string    `json:"action" db:"action"`
	Customer string    `json:"customer,omitempty" db:"customer_id"`
	Subject  string    `json:"subject,omitempty" db:"subject"`
	// Before and After are JSON documents (or empty) of what changed.
	Before   string `json:"before,omitempty" db:"before_doc"`
	After    string `json:"after,omitempty" db:"after_doc"`
	PrevHash string `json:"prev_hash" db:"prev_hash"`
	Hash     string `json:"hash" db:"hash"`
}

// GenesisHash is the PrevHash of the first event.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// ComputeHash returns the event's hash over its id, its content and the
// hash of the event before it. Fields are length-prefixed so that no two
// different events share an encoding. Time counts to the microsecond, the
// precision both databases keep.
func (e AuditEvent) ComputeHash() string {
	h := sha256.New()
	var n [8]byte
	write := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	write(e.PrevHash)
	write(strconv.FormatInt(e.ID, 10))
	write(strconv.FormatInt(e.At.UnixMicro(), 10))
	for _, s := range []string{e.Actor, e.Action, e.Customer, e.Subject, e.Before, e.After} {
		write(s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ChainError names the first event where the audit chain breaks.
type ChainError struct {
	EventID int64
	Reason  string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("audit chain broken at event %d: %s", e.EventID, e.Reason)
}

// VerifyChain recomputes the chain over events in id order and checks that
// it ends at the recorded head (last id and hash), so that an edited,
// deleted, inserted, reordered or truncated event is found. It returns the
// number of events checked.
func VerifyChain(events iter.Seq2[AuditEvent, error], headID int64, headHash string) (int, error) {
	prev := GenesisHash
	var lastID int64
	n := 0
	for e, err := range events {
		if err != nil {
			return n, err
		}
		n++
		if e.ID <= lastID {
			return n, &ChainError{EventID: e.ID, Reason: fmt.Sprintf("out of order after event %d", lastID)}
		}
		if e.PrevHash != prev {
			reason := "its previous-hash does not match the event before it"
			if lastID != 0 && e.ID != lastID+1 {
				reason = fmt.Sprintf("events %d to %d are missing (deleted)", lastID+1, e.ID-1)
			} else if lastID == 0 && e.ID != 1 {
				reason = fmt.Sprintf("events 1 to %d are missing (deleted)", e.ID-1)
			}
			return n, &ChainError{EventID: e.ID, Reason: reason}
		}
		if got := e.ComputeHash(); got != e.Hash {
			return n, &ChainError{EventID: e.ID, Reason: "its content was altered (hash mismatch)"}
		}
		prev, lastID = e.Hash, e.ID
	}
	if lastID != headID || prev != headHash {
		if lastID < headID {
			return n, &ChainError{EventID: lastID + 1, Reason: fmt.Sprintf("the log ends at event %d but %d were written (events deleted from the end)", lastID, headID)}
		}
		return n, &ChainError{EventID: lastID, Reason: "the log does not end at the recorded head (events appended outside autoimport)"}
	}
	return n, nil
}
