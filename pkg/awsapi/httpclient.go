package awsapi

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient wraps next (the SDK's default client when nil) so that a request whose answer
// arrives quickly is not sent twice.
//
// The SDK hands net/http a request body that it closes as soon as Do returns, which is when the
// response headers have arrived. net/http's writer goroutine, after it has written the last
// body byte, copies the body once more to check that nothing is left over; the SDK's body does
// that copy through its WriteTo method, which answers io.EOF once the body is closed. When the
// server was faster than that goroutine (a loaded machine, a local server such as moto or the
// sandbox: the answer within milliseconds), net/http takes the io.EOF for a failed write and
// closes the connection under the response that is being read; reading its body fails with
// "use of closed network connection", which the SDK retries as a connection error. The retry
// repeats a call the server has already carried out: a create answers "already exists"
// (EntityAlreadyExists, RouteAlreadyExists), a delete "not found".
//
// The body net/http sees here has no WriteTo method, so the final check goes through Read, which
// answers (0, io.EOF) on a closed body: the end of the body, as it is.
//
// Service clients leave an HTTP client that is not an *awshttp.BuildableClient as it is: the
// connect and TLS timeouts of AWS_DEFAULTS_MODE=standard (none in the default, legacy mode) must
// then be set on next.
func HTTPClient(next aws.HTTPClient) aws.HTTPClient {
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	return earlyCloseSafe{next: next}
}

type earlyCloseSafe struct{ next aws.HTTPClient }

func (c earlyCloseSafe) Do(req *http.Request) (*http.Response, error) {
	if _, ok := req.Body.(io.WriterTo); ok {
		req = req.WithContext(req.Context()) // a shallow copy: the caller's request keeps its body
		req.Body = readCloserOnly{req.Body}
	}
	return c.next.Do(req)
}

// readCloserOnly hides every method of its body but Read and Close.
type readCloserOnly struct{ io.ReadCloser }
