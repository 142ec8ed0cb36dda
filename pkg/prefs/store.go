package prefs

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
)

// ErrConflict means the document changed between Load and Save.
var ErrConflict = errors.New("the document changed since it was read")

// SSMAPI is the part of the SSM client a Store uses.
type SSMAPI interface {
	DescribeDocument(ctx context.Context, in *ssm.DescribeDocumentInput, optFns ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error)
	GetDocument(ctx context.Context, in *ssm.GetDocumentInput, optFns ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error)
	CreateDocument(ctx context.Context, in *ssm.CreateDocumentInput, optFns ...func(*ssm.Options)) (*ssm.CreateDocumentOutput, error)
	UpdateDocument(ctx context.Context, in *ssm.UpdateDocumentInput, optFns ...func(*ssm.Options)) (*ssm.UpdateDocumentOutput, error)
	UpdateDocumentDefaultVersion(ctx context.Context, in *ssm.UpdateDocumentDefaultVersionInput, optFns ...func(*ssm.Options)) (*ssm.UpdateDocumentDefaultVersionOutput, error)
}

// Store reads and writes one Session document in SSM.
type Store struct {
	// SSM is the client.
	SSM SSMAPI
	// Name is the document (ssmdoc.Shell for the account preferences).
	Name string
}

// Snapshot is a document as read, with what the optimistic check compares.
type Snapshot struct {
	// Name is the document's name.
	Name string `json:"name"`
	// Exists is false when the document has never been created; Doc is
	// then Default().
	Exists bool `json:"exists"`
	// DefaultVersion is the version in effect, whose content Doc holds.
	DefaultVersion string `json:"default_version,omitempty"`
	// LatestVersion is the newest version.
	LatestVersion string `json:"latest_version,omitempty"`
	// Hash is SSM's hash of the default version.
	Hash string `json:"-"`
	// Doc is the content of the default version.
	Doc *Document `json:"-"`
}

// Result says what Save did.
type Result struct {
	// Name is the document.
	Name string `json:"name"`
	// Version is the default version after the save.
	Version string `json:"version"`
	// Created is true when the document did not exist before.
	Created bool `json:"created"`
	// Changed is false when the content was already in effect.
	Changed bool `json:"changed"`
	// Reused is true when SSM refused the content as a duplicate of an
	// older version, which was made the default instead.
	Reused bool `json:"reused,omitempty"`
}

// Load reads the default version of the document. A missing document is
// not an error: the snapshot says so and holds the defaults.
func (s Store) Load(ctx context.Context) (*Snapshot, error) {
	desc, err := s.SSM.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(s.Name)})
	if isCode(err, "InvalidDocument") {
		return &Snapshot{Name: s.Name, Doc: Default()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading document %s: %w", s.Name, err)
	}
	d := desc.Document
	if d.DocumentType != "" && d.DocumentType != ssmtypes.DocumentTypeSession {
		return nil, fmt.Errorf("document %s is a %s document, not a Session document", s.Name, d.DocumentType)
	}
	snap := &Snapshot{
		Name: s.Name, Exists: true, DefaultVersion: aws.ToString(d.DefaultVersion),
		LatestVersion: aws.ToString(d.LatestVersion), Hash: aws.ToString(d.Hash),
	}
	snap.Doc, err = s.content(ctx, snap.DefaultVersion)
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// content reads and parses one version ("" is the default version).
func (s Store) content(ctx context.Context, version string) (*Document, error) {
	in := &ssm.GetDocumentInput{Name: aws.String(s.Name), DocumentFormat: ssmtypes.DocumentFormatJson}
	if version != "" {
		in.DocumentVersion = aws.String(version)
	}
	out, err := s.SSM.GetDocument(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("reading document %s version %s: %w", s.Name, version, err)
	}
	doc, err := Parse([]byte(aws.ToString(out.Content)))
	if err != nil {
		return nil, fmt.Errorf("document %s version %s: %w", s.Name, version, err)
	}
	return doc, nil
}

// Save makes doc the document's default version. base is the snapshot the
// caller edited: if the document changed since (another version, another
// default or another hash), Save writes nothing and returns ErrConflict.
// Content equal to base's is not written at all. Otherwise a missing
// document is created and an existing one gets a new version through
// UpdateDocument($LATEST) that is then made the default. SSM refuses
// content identical to an older version (DuplicateDocumentContent); that
// version is made the default instead.
func (s Store) Save(ctx context.Context, base *Snapshot, doc *Document) (*Result, error) {
	res := &Result{Name: s.Name}
	if base.Exists && doc.Equal(base.Doc) {
		res.Version = base.DefaultVersion
		return res, nil
	}
	content, err := doc.JSON()
	if err != nil {
		return nil, err
	}
	if err := s.check(ctx, base); err != nil {
		return nil, err
	}
	res.Changed = true
	if !base.Exists {
		out, err := s.SSM.CreateDocument(ctx, &ssm.CreateDocumentInput{
			Name:           aws.String(s.Name),
			Content:        aws.String(string(content)),
			DocumentType:   ssmtypes.DocumentTypeSession,
			DocumentFormat: ssmtypes.DocumentFormatJson,
		})
		if isCode(err, "DocumentAlreadyExists") {
			return nil, fmt.Errorf("%w: %s was created by someone else meanwhile: run the command again", ErrConflict, s.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("creating document %s: %w", s.Name, err)
		}
		res.Created = true
		res.Version = "1"
		if out.DocumentDescription != nil && out.DocumentDescription.DocumentVersion != nil {
			res.Version = *out.DocumentDescription.DocumentVersion
		}
		return res, nil
	}
	out, err := s.SSM.UpdateDocument(ctx, &ssm.UpdateDocumentInput{
		Name:            aws.String(s.Name),
		Content:         aws.String(string(content)),
		DocumentVersion: aws.String("$LATEST"),
		DocumentFormat:  ssmtypes.DocumentFormatJson,
	})
	switch {
	case isCode(err, "DuplicateDocumentContent"):
		v, err := s.findVersion(ctx, base.LatestVersion, doc)
		if err != nil {
			return nil, err
		}
		res.Version, res.Reused = v, true
	case err != nil:
		return nil, fmt.Errorf("updating document %s: %w", s.Name, err)
	default:
		res.Version = aws.ToString(out.DocumentDescription.DocumentVersion)
	}
	if res.Version == base.DefaultVersion {
		res.Changed = false
		return res, nil
	}
	if _, err := s.SSM.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{
		Name: aws.String(s.Name), DocumentVersion: aws.String(res.Version),
	}); err != nil {
		return nil, fmt.Errorf("making version %s the default of %s: %w", res.Version, s.Name, err)
	}
	return res, nil
}

// check is the optimistic concurrency check, made right before writing.
func (s Store) check(ctx context.Context, base *Snapshot) error {
	desc, err := s.SSM.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(s.Name)})
	exists := !isCode(err, "InvalidDocument")
	if err != nil && exists {
		return fmt.Errorf("re-reading document %s: %w", s.Name, err)
	}
	if exists != base.Exists {
		if exists {
			return fmt.Errorf("%w: %s was created by someone else meanwhile: run the command again", ErrConflict, s.Name)
		}
		return fmt.Errorf("%w: %s was deleted meanwhile: run the command again", ErrConflict, s.Name)
	}
	if !exists {
		return nil
	}
	d := desc.Document
	latest, def, hash := aws.ToString(d.LatestVersion), aws.ToString(d.DefaultVersion), aws.ToString(d.Hash)
	if latest != base.LatestVersion || def != base.DefaultVersion || hash != base.Hash {
		return fmt.Errorf("%w: %s is now at version %s (default %s), read at version %s (default %s): run the command again to apply your change on top",
			ErrConflict, s.Name, latest, def, base.LatestVersion, base.DefaultVersion)
	}
	return nil
}

// findVersion returns the newest version whose content equals doc.
func (s Store) findVersion(ctx context.Context, latest string, doc *Document) (string, error) {
	n, err := strconv.Atoi(latest)
	if err != nil {
		return "", fmt.Errorf("document %s has a non-numeric latest version %q", s.Name, latest)
	}
	for v := n; v >= 1; v-- {
		old, err := s.content(ctx, strconv.Itoa(v))
		if err != nil {
			return "", err
		}
		if old.Equal(doc) {
			return strconv.Itoa(v), nil
		}
	}
	return "", fmt.Errorf("document %s: SSM reports duplicate content but no version matches", s.Name)
}

// isCode reports whether err carries the AWS error code.
func isCode(err error, code string) bool {
	var ae smithy.APIError
	return err != nil && errors.As(err, &ae) && ae.ErrorCode() == code
}
