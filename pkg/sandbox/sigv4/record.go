package sigv4

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
)

// Record reads an answer the sandbox passed through from moto and accepts
// the credentials it mints: STS AssumeRole*, GetSessionToken and
// GetFederationToken (Credentials + AssumedRoleUser/FederatedUser) and IAM
// CreateAccessKey (AccessKey). Credentials from AssumeRole belong to the
// role's account, as moto maps them; the others to the caller's. It
// returns how many credentials it recorded.
func (s *Store) Record(caller *Caller, body []byte) int {
	if !bytes.Contains(body, []byte("<SecretAccessKey>")) {
		return 0
	}
	doc, ok := scanMinted(body)
	if !ok {
		return 0
	}
	account, arn := DefaultAccountID, ""
	if caller != nil {
		account, arn = caller.AccountID, caller.ARN
	}
	n := 0
	for _, c := range doc.Creds {
		cred := Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, AccountID: account, ARN: arn}
		switch {
		case doc.AssumedARN != "":
			cred.ARN = doc.AssumedARN
			if a := arnAccount(doc.AssumedARN); a != "" {
				cred.AccountID = a
			}
		case doc.FederatedID != "":
			cred.ARN = doc.FederatedID
		}
		if cred.AccessKeyID != "" && cred.SecretAccessKey != "" {
			s.Add(cred)
			n++
		}
	}
	for _, k := range doc.AccessKey {
		cred := Credential{AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey, AccountID: account,
			ARN: "arn:aws:iam::" + account + ":user/" + k.UserName}
		if cred.AccessKeyID != "" && cred.SecretAccessKey != "" {
			s.Add(cred)
			n++
		}
	}
	return n
}

// mintedDoc is what an STS or IAM answer says about new credentials.
type mintedDoc struct {
	Creds       []mintedKey // Credentials elements
	AccessKey   []mintedKey // IAM AccessKey elements
	AssumedARN  string      // AssumedRoleUser/Arn
	FederatedID string      // FederatedUser/Arn
}

type mintedKey struct {
	UserName, AccessKeyID, SecretAccessKey, SessionToken string
}

// scanMinted walks an XML answer whatever its root (AssumeRoleResponse,
// GetSessionTokenResponse, CreateAccessKeyResponse…) and collects the
// elements that describe minted credentials.
func scanMinted(body []byte) (mintedDoc, bool) {
	var doc mintedDoc
	dec := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	var cur *mintedKey
	for {
		tok, err := dec.Token()
		if err != nil {
			return doc, err == io.EOF
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			switch t.Name.Local {
			case "Credentials":
				doc.Creds = append(doc.Creds, mintedKey{})
				cur = &doc.Creds[len(doc.Creds)-1]
			case "AccessKey":
				doc.AccessKey = append(doc.AccessKey, mintedKey{})
				cur = &doc.AccessKey[len(doc.AccessKey)-1]
			}
		case xml.EndElement:
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
			if t.Name.Local == "Credentials" || t.Name.Local == "AccessKey" {
				cur = nil
			}
		case xml.CharData:
			if len(path) < 2 {
				continue
			}
			leaf, parent := path[len(path)-1], path[len(path)-2]
			text := strings.TrimSpace(string(t))
			switch {
			case parent == "AssumedRoleUser" && leaf == "Arn":
				doc.AssumedARN = text
			case parent == "FederatedUser" && leaf == "Arn":
				doc.FederatedID = text
			case cur != nil && (parent == "Credentials" || parent == "AccessKey"):
				switch leaf {
				case "AccessKeyId":
					cur.AccessKeyID = text
				case "SecretAccessKey":
					cur.SecretAccessKey = text
				case "SessionToken":
					cur.SessionToken = text
				case "UserName":
					cur.UserName = text
				}
			}
		}
	}
}

// arnAccount returns the account field of an ARN.
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}
