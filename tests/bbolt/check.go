// check.go: the validation harness for Stella's bbolt writer, built against Debian's
// go.etcd.io/bbolt (golang-github-coreos-bbolt-dev) in GOPATH mode, with no network.
//
//	bboltcheck check DB       open read-only; tx.Check() (every error); a raw walk of the page
//	                          headers (id = page number, known type: v1.4's FastCheck rule);
//	                          keys strictly increasing and Get(key) == value in every bucket;
//	                          then the dump on stdout (format below) and a stats line
//	bboltcheck rwopen DB      open read-write and close (the file must not change)
//	bboltcheck update DB      open read-write, run a no-op Update (bbolt rewrites the free
//	                          list and a meta page), close
//	bboltcheck new DB         create an empty DB the way bbolt does
//	bboltcheck trivy DB       check (as above), then a readable dump of a Trivy DB v2, one
//	                          "TOP\tKEY\tVALUE" or "TOP\tPKG\tKEY\tVALUE" line per key,
//	                          every value decoded strictly into trivy-db's types (field
//	                          names of pkg/types; unknown fields refused), every advisory
//	                          bucket with its data-source row and every advisory's id in
//	                          the vulnerability bucket
//	bboltcheck ops DB OPS     write DB's buckets and keys as an op stream for `load`
//	bboltcheck load OPS DB N  replay an op stream (see tests/bench/bench_bbolt.c) into a new
//	                          DB with bbolt itself, N operations per write transaction,
//	                          NoSync (the benchmark baseline)
//
// Dump: "bucket PATH" and "key PATH KEYHEX VLEN SHA256HEX" lines, depth-first in key order,
// PATH being the hex bucket names joined by "/"; last, "stats ..." with bbolt's own
// Bucket.Stats() summed over the top-level buckets and the page count.
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

var problems int

func problem(format string, args ...interface{}) {
	problems++
	fmt.Fprintf(os.Stderr, "check: "+format+"\n", args...)
}

func die(err error) {
	fmt.Fprintln(os.Stderr, "bboltcheck:", err)
	os.Exit(2)
}

// walkPages reads every node header below the high-water mark straight from the file.
func walkPages(path string, pgid uint64, pageSize int) {
	f, err := os.Open(path)
	if err != nil {
		die(err)
	}
	defer f.Close()
	hdr := make([]byte, 16)
	for i := uint64(0); i < pgid; {
		if _, err := f.ReadAt(hdr, int64(i)*int64(pageSize)); err != nil {
			problem("page %d: cannot read header: %v", i, err)
			return
		}
		id := binary.LittleEndian.Uint64(hdr[0:])
		flags := binary.LittleEndian.Uint16(hdr[8:])
		overflow := binary.LittleEndian.Uint32(hdr[12:])
		if id != i {
			problem("page %d: header says id %d", i, id)
		}
		switch flags {
		case 0x01, 0x02, 0x04, 0x10:
		default:
			problem("page %d: unknown flags %#x", i, flags)
		}
		i += uint64(overflow) + 1
	}
}

func hexPath(path [][]byte) string {
	parts := make([]string, len(path))
	for i, p := range path {
		parts[i] = hex.EncodeToString(p)
	}
	return strings.Join(parts, "/")
}

func dumpBucket(w *bufio.Writer, b *bolt.Bucket, path [][]byte) {
	var prev []byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			problem("bucket %s: key %x not after %x", hexPath(path), k, prev)
		}
		prev = append(prev[:0], k...)
		sub := append(append([][]byte{}, path...), append([]byte{}, k...))
		if child := b.Bucket(k); child != nil {
			fmt.Fprintf(w, "bucket %s\n", hexPath(sub))
			dumpBucket(w, child, sub)
			continue
		}
		if got := b.Get(k); !bytes.Equal(got, v) {
			problem("bucket %s: Get(%x) differs from the cursor's value", hexPath(path), k)
		}
		sum := sha256.Sum256(v)
		fmt.Fprintf(w, "key %s %x %d %x\n", hexPath(path), k, len(v), sum)
	}
}

func check(path string, dst io.Writer) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		die(err)
	}
	defer db.Close()
	out := bufio.NewWriterSize(dst, 1<<20)
	defer out.Flush()
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			problem("%v", e)
		}
		walkPages(path, uint64(tx.Size())/uint64(db.Info().PageSize), db.Info().PageSize)
		var s bolt.BucketStats
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			p := [][]byte{append([]byte{}, name...)}
			fmt.Fprintf(out, "bucket %s\n", hexPath(p))
			dumpBucket(out, b, p)
			st := b.Stats()
			s.BucketN += st.BucketN
			s.InlineBucketN += st.InlineBucketN
			s.KeyN += st.KeyN
			s.LeafPageN += st.LeafPageN
			s.LeafOverflowN += st.LeafOverflowN
			s.BranchPageN += st.BranchPageN
			s.BranchOverflowN += st.BranchOverflowN
			return nil
		})
		fmt.Fprintf(out, "stats buckets=%d inline=%d keys=%d leaf=%d leafovf=%d branch=%d "+
			"branchovf=%d pages=%d\n", s.BucketN, s.InlineBucketN, s.KeyN, s.LeafPageN,
			s.LeafOverflowN, s.BranchPageN, s.BranchOverflowN,
			tx.Size()/int64(db.Info().PageSize))
		return err
	})
	if err != nil {
		die(err)
	}
	if problems > 0 {
		out.Flush()
		fmt.Fprintf(os.Stderr, "check: %d problem(s)\n", problems)
		os.Exit(1)
	}
}

func readN(r *bufio.Reader) []byte {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		die(fmt.Errorf("op stream: %v", err))
	}
	b := make([]byte, binary.LittleEndian.Uint32(n[:]))
	if _, err := io.ReadFull(r, b); err != nil {
		die(fmt.Errorf("op stream: %v", err))
	}
	return b
}

// load replays 'B' name / 'K' key value / 'E' records with bbolt, batch ops per transaction.
func load(opsPath, dbPath string, batch int) {
	f, err := os.Open(opsPath)
	if err != nil {
		die(err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	db, err := bolt.Open(dbPath, 0o644, nil)
	if err != nil {
		die(err)
	}
	db.NoSync = true
	tx, err := db.Begin(true)
	if err != nil {
		die(err)
	}
	var names [][]byte
	var stack []*bolt.Bucket
	ops := 0
	for {
		op, err := r.ReadByte()
		if err == io.EOF {
			break
		} else if err != nil {
			die(err)
		}
		switch op {
		case 'B':
			name := readN(r)
			var b *bolt.Bucket
			if len(stack) == 0 {
				b, err = tx.CreateBucket(name)
			} else {
				b, err = stack[len(stack)-1].CreateBucket(name)
			}
			if err != nil {
				die(err)
			}
			names = append(names, name)
			stack = append(stack, b)
		case 'E':
			names, stack = names[:len(names)-1], stack[:len(stack)-1]
		case 'K':
			k := readN(r)
			v := readN(r)
			if err := stack[len(stack)-1].Put(k, v); err != nil {
				die(err)
			}
		default:
			die(fmt.Errorf("op stream: unknown op %q", op))
		}
		if ops++; ops%batch == 0 {
			if err := tx.Commit(); err != nil {
				die(err)
			}
			if tx, err = db.Begin(true); err != nil {
				die(err)
			}
			stack = stack[:0]
			for i, n := range names {
				if i == 0 {
					stack = append(stack, tx.Bucket(n))
				} else {
					stack = append(stack, stack[i-1].Bucket(n))
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		die(err)
	}
	if err := db.Close(); err != nil {
		die(err)
	}
}

// Trivy DB v2 value shapes (trivy-db pkg/types, the fields Stella writes or may write).
type trivyDataSource struct {
	ID, Name, URL, BaseID string
}

type trivyCVSS struct {
	V2Vector, V3Vector, V40Vector string
	V2Score, V3Score, V40Score    float64
}

type trivyAdvisory struct {
	VendorIDs, OSes, Arches                                []string
	Severity                                               int
	FixedVersion, AffectedVersion                          string
	VulnerableVersions, PatchedVersions, UnaffectedVersions []string
	Status                                                 int
}

type trivyVulnerability struct {
	Title, Description, Severity string
	CweIDs                       []string
	VendorSeverity               map[string]int
	CVSS                         map[string]trivyCVSS
	References                   []string
	PublishedDate                *time.Time
	LastModifiedDate             *time.Time
}

func strictJSON(v []byte, into interface{}, where string) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	if err := d.Decode(into); err != nil {
		problem("%s: %v", where, err)
	}
}

func trivyDump(path string) {
	check(path, io.Discard) // exits on a problem
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		die(err)
	}
	defer db.Close()
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	err = db.View(func(tx *bolt.Tx) error {
		ds, vuln := tx.Bucket([]byte("data-source")), tx.Bucket([]byte("vulnerability"))
		if ds == nil || vuln == nil {
			problem("data-source or vulnerability bucket missing")
			return nil
		}
		return tx.ForEach(func(top []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				where := string(top) + "/" + string(k)
				switch {
				case v != nil && string(top) == "data-source":
					strictJSON(v, &trivyDataSource{}, where)
				case v != nil && string(top) == "vulnerability":
					strictJSON(v, &trivyVulnerability{}, where)
				case v != nil:
					problem("%s: a key directly in an advisory bucket", where)
				}
				if v != nil {
					fmt.Fprintf(out, "%s\t%s\t%s\n", top, k, v)
					return nil
				}
				if ds.Get(top) == nil {
					problem("%s: no data-source row", top)
				}
				return b.Bucket(k).ForEach(func(id, av []byte) error {
					strictJSON(av, &trivyAdvisory{}, where+"/"+string(id))
					if vuln.Get(id) == nil {
						problem("%s/%s: not in the vulnerability bucket", where, id)
					}
					fmt.Fprintf(out, "%s\t%s\t%s\t%s\n", top, k, id, av)
					return nil
				})
			})
		})
	})
	if err != nil {
		die(err)
	}
	if problems > 0 {
		out.Flush()
		fmt.Fprintf(os.Stderr, "trivy: %d problem(s)\n", problems)
		os.Exit(1)
	}
}

func writeN(w *bufio.Writer, b []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(b)))
	w.Write(n[:])
	w.Write(b)
}

func opsBucket(w *bufio.Writer, b *bolt.Bucket) {
	b.ForEach(func(k, v []byte) error {
		if v == nil {
			w.WriteByte('B')
			writeN(w, k)
			opsBucket(w, b.Bucket(k))
			w.WriteByte('E')
			return nil
		}
		w.WriteByte('K')
		writeN(w, k)
		writeN(w, v)
		return nil
	})
}

// ops writes the whole DB as a `load` op stream (the benchmark's bbolt baseline input).
func ops(dbPath, opsPath string) {
	db, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		die(err)
	}
	defer db.Close()
	f, err := os.Create(opsPath)
	if err != nil {
		die(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			w.WriteByte('B')
			writeN(w, name)
			opsBucket(w, b)
			w.WriteByte('E')
			return nil
		})
	})
	if err := w.Flush(); err != nil {
		die(err)
	}
	if err := f.Close(); err != nil {
		die(err)
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: bboltcheck check|rwopen|update|new DB | load OPS DB N")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "check":
		check(os.Args[2], os.Stdout)
	case "rwopen", "update", "new":
		db, err := bolt.Open(os.Args[2], 0o644, &bolt.Options{Timeout: 5 * time.Second})
		if err != nil {
			die(err)
		}
		if os.Args[1] == "update" {
			if err := db.Update(func(*bolt.Tx) error { return nil }); err != nil {
				die(err)
			}
		}
		if err := db.Close(); err != nil {
			die(err)
		}
	case "trivy":
		trivyDump(os.Args[2])
	case "ops":
		if len(os.Args) != 4 {
			die(fmt.Errorf("ops DB OPS"))
		}
		ops(os.Args[2], os.Args[3])
	case "load":
		if len(os.Args) != 5 {
			die(fmt.Errorf("load OPS DB N"))
		}
		n, err := strconv.Atoi(os.Args[4])
		if err != nil || n < 1 {
			die(fmt.Errorf("batch %q: not a positive number", os.Args[4]))
		}
		load(os.Args[2], os.Args[3], n)
	default:
		die(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
