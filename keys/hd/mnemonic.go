package hd

import (
	"errors"
	"strings"

	"github.com/tyler-smith/go-bip39"
	"golang.org/x/text/unicode/norm"
)

// NewMnemonic returns a fresh English BIP-39 mnemonic of 12 or 24 words.
func NewMnemonic(words int) (string, error) {
	var bits int
	switch words {
	case 12:
		bits = 128
	case 24:
		bits = 256
	default:
		return "", errors.New("hd: a mnemonic has 12 or 24 words")
	}
	entropy, err := bip39.NewEntropy(bits)
	if err != nil {
		return "", err
	}
	defer clear(entropy)
	return bip39.NewMnemonic(entropy)
}

// NormalizeMnemonic applies NFKD and single spaces, as BIP-39 requires.
func NormalizeMnemonic(m string) string {
	return strings.Join(strings.Fields(norm.NFKD.String(m)), " ")
}

// Seed checks a mnemonic (words and checksum) and derives its 64-byte seed
// with an optional passphrase, both NFKD-normalised (BIP-39).
func Seed(mnemonic, passphrase string) ([]byte, error) {
	m := NormalizeMnemonic(mnemonic)
	n := len(strings.Fields(m))
	if n != 12 && n != 15 && n != 18 && n != 21 && n != 24 {
		return nil, errors.New("hd: a mnemonic has 12, 15, 18, 21 or 24 words")
	}
	if _, err := bip39.EntropyFromMnemonic(m); err != nil {
		return nil, errors.New("hd: invalid mnemonic: unknown word or bad checksum")
	}
	return bip39.NewSeed(m, norm.NFKD.String(passphrase)), nil
}
