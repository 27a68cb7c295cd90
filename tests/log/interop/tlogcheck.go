// tlogcheck verifies Einblick's log artefacts with Go's own golang.org/x/mod/sumdb packages,
// an implementation Einblick did not write: the checkpoint's signature with sumdb/note, the root
// hash recomputed from the entries with sumdb/tlog, and every inclusion and consistency proof
// given. Input on stdin, one item per line:
//
//	vkey <verifier key>
//	note <base64 of the signed checkpoint note>
//	leaf <base64 of one entry's exact bytes>         (in order, index 0 first)
//	inclusion <index> <base64 hash> ...              (a proof Einblick produced)
//	consistency <old size> <base64 old root> <base64 hash> ...
//
// It prints "ok <size> <base64 root>" and, per proof line, Go's own proof for the same question
// ("goinclusion <index> <hashes...>", "goconsistency <old> <hashes...>"), or exits 1 naming the
// first failure. Build offline: GOPATH=/usr/share/gocode GO111MODULE=off go build.
package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "tlogcheck: "+format+"\n", args...)
	os.Exit(1)
}

func decodeHash(s string) tlog.Hash {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != tlog.HashSize {
		fail("not a base64 SHA-256 hash: %q", s)
	}
	var h tlog.Hash
	copy(h[:], raw)
	return h
}

func encodeHashes(hs []tlog.Hash) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return strings.Join(parts, " ")
}

func main() {
	var vkey, signed string
	var stored []tlog.Hash
	var records int64
	var proofLines []string
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, fmt.Errorf("stored hash %d not available", x)
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Buffer(make([]byte, 1<<20), 1<<24)
	for scanner.Scan() {
		kind, rest, _ := strings.Cut(scanner.Text(), " ")
		switch kind {
		case "vkey":
			vkey = rest
		case "note":
			raw, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				fail("note is not base64: %v", err)
			}
			signed = string(raw)
		case "leaf":
			data, err := base64.StdEncoding.DecodeString(rest)
			if err != nil {
				fail("leaf %d is not base64: %v", records, err)
			}
			hashes, err := tlog.StoredHashes(records, data, reader)
			if err != nil {
				fail("leaf %d: %v", records, err)
			}
			stored = append(stored, hashes...)
			records++
		case "inclusion", "consistency":
			proofLines = append(proofLines, scanner.Text())
		default:
			fail("unknown input line %q", kind)
		}
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open([]byte(signed), note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 {
		fail("checkpoint has fewer than three lines")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		fail("checkpoint size: %v", err)
	}
	root := decodeHash(lines[2])
	if size != records {
		fail("checkpoint covers %d entries, %d were given", size, records)
	}
	computed, err := tlog.TreeHash(records, reader)
	if err != nil {
		fail("tree hash: %v", err)
	}
	if computed != root {
		fail("root hash recomputed from the entries %s differs from the checkpoint's %s",
			computed, root)
	}
	fmt.Printf("ok %d %s\n", size, base64.StdEncoding.EncodeToString(root[:]))
	for _, line := range proofLines {
		fields := strings.Fields(line)
		switch fields[0] {
		case "inclusion":
			index, _ := strconv.ParseInt(fields[1], 10, 64)
			var proof tlog.RecordProof
			for _, h := range fields[2:] {
				proof = append(proof, decodeHash(h))
			}
			leaf, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
			if err != nil {
				fail("leaf %d: %v", index, err)
			}
			if err := tlog.CheckRecord(proof, records, root, index, leaf[0]); err != nil {
				fail("inclusion proof of entry %d: %v", index, err)
			}
			own, err := tlog.ProveRecord(records, index, reader)
			if err != nil {
				fail("prove entry %d: %v", index, err)
			}
			fmt.Printf("goinclusion %d %s\n", index, encodeHashes(own))
		case "consistency":
			old, _ := strconv.ParseInt(fields[1], 10, 64)
			oldRoot := decodeHash(fields[2])
			var proof tlog.TreeProof
			for _, h := range fields[3:] {
				proof = append(proof, decodeHash(h))
			}
			if err := tlog.CheckTree(proof, records, root, old, oldRoot); err != nil {
				fail("consistency proof from %d: %v", old, err)
			}
			own, err := tlog.ProveTree(records, old, reader)
			if err != nil {
				fail("prove tree from %d: %v", old, err)
			}
			fmt.Printf("goconsistency %d %s\n", old, encodeHashes(own))
		}
	}
}
