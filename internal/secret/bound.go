package secret

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// A value sealed for a place (a customer, an account, a field) opens only
// there: the place is the AES-GCM associated data, so a sealed value
// copied from one customer's row into another's fails to open instead of
// revealing the first customer's secret under the second's name.

// boundPrefix marks a value sealed for a place; values sealed before
// places existed have none.
const boundPrefix = "b1:"

// ErrUnbound is returned by OpenFor for a value sealed without a place.
var ErrUnbound = errors.New("sealed value is not bound to where it belongs (sealed before autoimport bound values to their place)")

// SealFor seals plaintext for place.
func (k *Key) SealFor(plaintext []byte, place string) string {
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("secret: no randomness: " + err.Error())
	}
	return boundPrefix + base64.StdEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plaintext, []byte(place)))
}

// OpenFor opens a value SealFor sealed for place. A value sealed for
// another place, or with another key, does not open; one sealed without a
// place is ErrUnbound.
func (k *Key) OpenFor(sealed, place string) ([]byte, error) {
	b64, ok := strings.CutPrefix(sealed, boundPrefix)
	if !ok {
		return nil, ErrUnbound
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	n := k.aead.NonceSize()
	if err != nil || len(raw) < n {
		return nil, errors.New("sealed value is damaged")
	}
	pt, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(place))
	if err != nil {
		return nil, fmt.Errorf("sealed value for %s cannot be opened: it does not open there with this AUTOIMPORT_SECRET_KEY (it was sealed for another place and copied from another row, or with another key), or it is damaged", place)
	}
	return pt, nil
}

// Bound reports whether a sealed value was sealed for a place.
func Bound(sealed string) bool { return strings.HasPrefix(sealed, boundPrefix) }
