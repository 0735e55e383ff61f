package halopsa

// DecodeCreated exposes decodeCreated to the fuzz test.
func DecodeCreated(raw []byte) (id int, err error) {
	u, err := decodeCreated(raw)
	return u.ID, err
}
