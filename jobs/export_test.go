package jobs

// SetRotationStep makes r call f after each step of a rotation ("pending",
// "directory", "set", "vault", "done"); an error from f stops the pass
// there, as a crash would.
func SetRotationStep(r *Rotator, f func(step string) error) { r.step = f }

// SealedPlace is where a rotation's sealed password opens.
var SealedPlace = sealedPlace
