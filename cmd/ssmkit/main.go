// Command ssmkit is a CLI for AWS Systems Manager Session Manager.
package main

import (
	"os"

	"github.com/ssmkit/ssmkit/pkg/cmd/root"
)

func main() {
	os.Exit(root.Main())
}
