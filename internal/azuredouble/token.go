package azuredouble

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Tenant is the Entra ID tenant of the double's tokens.
const Tenant = "72f988bf-0000-4000-8000-00000000d0b1"

// Issuer is the issuer of the double's tokens: an Entra ID v1 issuer, one
// of the prefixes Azurite's --oauth basic accepts.
const Issuer = "https://sts.windows.net/" + Tenant + "/"

// Claims are the claims of a token the double issues (and Azurite in
// --oauth basic mode checks: aud, iss, iat, nbf, exp).
type Claims struct {
	Audience  string `json:"aud"`
	Issuer    string `json:"iss"`
	IssuedAt  int64  `json:"iat"`
	NotBefore int64  `json:"nbf"`
	Expires   int64  `json:"exp"`
	// ObjectID is the principal (a managed identity's principal id, or a
	// user's object id); AppID the client id of a managed identity.
	ObjectID string `json:"oid"`
	AppID    string `json:"appid,omitempty"`
	Tenant   string `json:"tid"`
}

// AccessToken returns a JWT-shaped access token for audience (a resource
// such as https://storage.azure.com) and principal objectID (appID: a
// managed identity's client id, or ""), valid for an hour. Its signature is
// not a real one: Azurite's basic OAuth mode and the double check the
// claims only, as no key exists offline to sign with.
func AccessToken(audience, objectID, appID string) string {
	now := time.Now()
	c := Claims{Audience: audience, Issuer: Issuer, IssuedAt: now.Unix(), NotBefore: now.Add(-5 * time.Minute).Unix(),
		Expires: now.Add(time.Hour).Unix(), ObjectID: objectID, AppID: appID, Tenant: Tenant}
	enc := base64.RawURLEncoding
	head, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "azuredouble"})
	body, _ := json.Marshal(c)
	return enc.EncodeToString(head) + "." + enc.EncodeToString(body) + "." + enc.EncodeToString([]byte("azuredouble-unsigned"))
}

// ParseToken returns the claims of a token AccessToken made (the
// signature is not checked), or an error for anything else.
func ParseToken(tok string) (Claims, error) {
	var c Claims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return c, errors.New("azuredouble: not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, errors.New("azuredouble: JWT claims are not base64url")
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, errors.New("azuredouble: JWT claims are not JSON")
	}
	if c.Issuer != Issuer {
		return c, errors.New("azuredouble: token of another issuer")
	}
	return c, nil
}
