// Package grpcclient puts a Latchkey client in front of a grpc-go server:
// unary and streaming interceptors that admit a call only with a key that
// admits its method's route. It is a package of its own so that services
// without gRPC do not compile grpc-go.
package grpcclient

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"connectrpc.com/connect/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/latchkey/latchkey/client"
)

// UnaryServerInterceptor admits a unary call only with a key, in the
// `authorization` (Bearer) or `x-api-key` metadata, that admits the
// method's route (by full method name, "/pkg.Service/Method"; "" for the
// rest). Refusals are Unauthenticated, PermissionDenied or Unavailable.
// The admitted key is in the handler's context (client.KeyFrom).
func UnaryServerInterceptor(c *client.Client, routes client.Routes) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := admit(ctx, c, routes, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming calls.
func StreamServerInterceptor(c *client.Client, routes client.Routes) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := admit(ss.Context(), c, routes, info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &admittedStream{ServerStream: ss, ctx: ctx})
	}
}

type admittedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *admittedStream) Context() context.Context { return s.ctx }

func admit(ctx context.Context, c *client.Client, routes client.Routes, method string) (context.Context, error) {
	route, ok := routes[method]
	if !ok {
		if route, ok = routes[""]; !ok {
			return nil, status.Error(codes.PermissionDenied, "no route allows "+method)
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	token := first(md, "x-api-key")
	if auth := first(md, "authorization"); len(auth) > 7 && (auth[:7] == "Bearer " || auth[:7] == "bearer ") {
		token = auth[7:]
	}
	if token == "" {
		return nil, status.Error(codes.Unauthenticated, "missing API key: send authorization: Bearer <key> or x-api-key: <key>")
	}
	res, err := c.Admit(ctx, token, route, peerAddr(ctx))
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			// Connect's codes are gRPC's, number for number.
			return nil, status.Error(codes.Code(ce.Code()), ce.Message())
		}
		return nil, status.Error(codes.Unavailable, "the API key cannot be verified now; retry later")
	}
	return client.WithKey(ctx, res), nil
}

func first(md metadata.MD, name string) string {
	if v := md.Get(name); len(v) > 0 {
		return v[0]
	}
	return ""
}

func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	if tcp, ok := p.Addr.(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(tcp.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}
