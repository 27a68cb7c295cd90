// tlogcheck verifies Einblick's log artefacts with Go's own golang.org/x/mod/sumdb packages,
// an implementation Einblick did not write: the checkpoint's signature with sumdb/note, the root
// hash recomputed from the entries with sumdb/tlog, and every inclusion and consistency proof
// given. Input on stdin, one item per line:
//
//	vkey <verifier key>
//	note <base64 of a signed checkpoint note>        (repeatable: every checkpoint of a log)
//	leaf <base64 of one entry's exact bytes>         (in order, index 0 first)
//	inclusion <index> <base64 hash> ...              (a proof Einblick produced)
//	consistency <old size> <base64 old root> <base64 hash> ...
//	record <index> <base64 entry bytes> <base64 hash> ...   (a single-entry tlog-proof)
//
// Every note must verify with the key; with leaves given, each note's root must equal the root
// Go recomputes over its size and the largest note must cover every leaf. It prints
// "ok <size> <base64 root>" per note (the largest last) and, per proof line, Go's own proof for
// the same question ("goinclusion <index> <hashes...>", "goconsistency <old> <hashes...>"),
// "gorecord <index>" for a record proof that holds, or exits 1 naming the first failure. Proofs
// are checked against the largest note. Build offline:
// GOPATH=/usr/share/gocode GO111MODULE=off go build.
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
	var vkey string
	var notes []string
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
			notes = append(notes, string(raw))
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
		case "inclusion", "consistency", "record":
			proofLines = append(proofLines, scanner.Text())
		default:
			fail("unknown input line %q", kind)
		}
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	if len(notes) == 0 {
		fail("no checkpoint note given")
	}
	var size int64 = -1
	var root tlog.Hash
	for _, signed := range notes {
		n, err := note.Open([]byte(signed), note.VerifierList(verifier))
		if err != nil {
			fail("checkpoint signature: %v", err)
		}
		lines := strings.Split(n.Text, "\n")
		if len(lines) < 4 {
			fail("checkpoint has fewer than three lines")
		}
		noteSize, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil {
			fail("checkpoint size: %v", err)
		}
		noteRoot := decodeHash(lines[2])
		if records > 0 {
			if noteSize > records {
				fail("checkpoint covers %d entries, %d were given", noteSize, records)
			}
			computed, err := tlog.TreeHash(noteSize, reader)
			if err != nil {
				fail("tree hash: %v", err)
			}
			if computed != noteRoot {
				fail("root hash recomputed from the entries %s differs from the checkpoint's %s",
					computed, noteRoot)
			}
		}
		if noteSize > size {
			size, root = noteSize, noteRoot
		}
		fmt.Printf("ok %d %s\n", noteSize, base64.StdEncoding.EncodeToString(noteRoot[:]))
	}
	if records > 0 && size != records {
		fail("checkpoint covers %d entries, %d were given", size, records)
	}
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
			if err := tlog.CheckRecord(proof, size, root, index, leaf[0]); err != nil {
				fail("inclusion proof of entry %d: %v", index, err)
			}
			own, err := tlog.ProveRecord(size, index, reader)
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
			if err := tlog.CheckTree(proof, size, root, old, oldRoot); err != nil {
				fail("consistency proof from %d: %v", old, err)
			}
			own, err := tlog.ProveTree(size, old, reader)
			if err != nil {
				fail("prove tree from %d: %v", old, err)
			}
			fmt.Printf("goconsistency %d %s\n", old, encodeHashes(own))
		case "record":
			index, _ := strconv.ParseInt(fields[1], 10, 64)
			data, err := base64.StdEncoding.DecodeString(fields[2])
			if err != nil {
				fail("record %d is not base64: %v", index, err)
			}
			var proof tlog.RecordProof
			for _, h := range fields[3:] {
				proof = append(proof, decodeHash(h))
			}
			if err := tlog.CheckRecord(proof, size, root, index, tlog.RecordHash(data)); err != nil {
				fail("record proof of entry %d: %v", index, err)
			}
			fmt.Printf("gorecord %d\n", index)
		}
	}
}
