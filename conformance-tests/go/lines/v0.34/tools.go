//go:build tools

// Package lines pins the v0.34 node program for `go build
// github.com/tendermint/tendermint/cmd/cometbft` (see go.mod).
package lines

import _ "github.com/tendermint/tendermint/cmd/cometbft"
