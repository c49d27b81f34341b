package core

import (
	"encoding/base64"

	qrcode "github.com/skip2/go-qrcode"
)

// QRPNGBase64 renders text as a size×size-pixel QR code PNG (medium error
// correction), base64-encoded for a data: URI. One helper for every QR
// code shown: the MFA enrolment's otpauth URI and a wallet's address in
// the browser UI.
func QRPNGBase64(text string, size int) (string, error) {
	png, err := qrcode.Encode(text, qrcode.Medium, size)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(png), nil
}
