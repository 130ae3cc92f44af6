// Command ceiling is a stand-in etcd KV server that keeps nothing in memory and does no
// consensus. It measures how much load the client tools on this machine can generate against a
// server that costs almost nothing: the ceiling for any real server on the same machine.
//
// Usage: ceiling ADDR MODE, where MODE is "none" (answer every request at once) or "fsync"
// (append each put's key and value to a file and answer once an fdatasync covering it has
// returned, batching whatever arrived during the previous fdatasync: the least work a server
// that acknowledges only durable writes can do).
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	pb "go.etcd.io/etcd/etcdserver/etcdserverpb"
	"google.golang.org/grpc"
)

type server struct {
	rev     int64
	durable bool
	mu      sync.Mutex
	pending [][]byte
	waiters []chan struct{}
	wake    chan struct{}
	file    *os.File
}

func (s *server) header() *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: 1, MemberId: 1, Revision: atomic.AddInt64(&s.rev, 1), RaftTerm: 2}
}

func (s *server) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return &pb.RangeResponse{Header: s.header()}, nil
}

func (s *server) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if s.durable {
		rec := make([]byte, 0, len(r.Key)+len(r.Value))
		rec = append(append(rec, r.Key...), r.Value...)
		done := make(chan struct{})
		s.mu.Lock()
		s.pending = append(s.pending, rec)
		s.waiters = append(s.waiters, done)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		<-done
	}
	return &pb.PutResponse{Header: s.header()}, nil
}

func (s *server) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	return &pb.DeleteRangeResponse{Header: s.header()}, nil
}

func (s *server) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return &pb.TxnResponse{Header: s.header()}, nil
}

func (s *server) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	return &pb.CompactionResponse{Header: s.header()}, nil
}

// commit writes and fdatasyncs whatever is pending, one batch at a time.
func (s *server) commit() {
	for range s.wake {
		for {
			s.mu.Lock()
			recs, waiters := s.pending, s.waiters
			s.pending, s.waiters = nil, nil
			s.mu.Unlock()
			if len(waiters) == 0 {
				break
			}
			var buf []byte
			for _, r := range recs {
				buf = append(buf, r...)
			}
			if _, err := s.file.Write(buf); err != nil {
				panic(err)
			}
			if err := syscall.Fdatasync(int(s.file.Fd())); err != nil {
				panic(err)
			}
			for _, w := range waiters {
				close(w)
			}
		}
	}
}

func main() {
	if len(os.Args) != 3 || (os.Args[2] != "none" && os.Args[2] != "fsync") {
		fmt.Fprintln(os.Stderr, "usage: ceiling ADDR none|fsync")
		os.Exit(2)
	}
	s := &server{durable: os.Args[2] == "fsync", wake: make(chan struct{}, 1)}
	if s.durable {
		f, err := os.CreateTemp("", "ceiling-*.log")
		if err != nil {
			panic(err)
		}
		// Allocated up front, as a write-ahead log is, so that appends do not grow the file.
		if err := syscall.Fallocate(int(f.Fd()), 0, 0, 2<<30); err != nil {
			panic(err)
		}
		s.file = f
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			<-stop
			os.Remove(f.Name())
			os.Exit(0)
		}()
		go s.commit()
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		panic(err)
	}
	g := grpc.NewServer()
	pb.RegisterKVServer(g, s)
	if err := g.Serve(l); err != nil {
		panic(err)
	}
}
