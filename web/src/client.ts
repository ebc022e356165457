// client: connect-web
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { ApiKeyService } from "../../gen/ts/latchkey/v1/api_key_pb.js";
import { AuthService } from "../../gen/ts/latchkey/v1/auth_pb.js";

// latchkeyClients returns the clients a browser page uses: the API key goes
// in the Authorization header of every call, over the Connect protocol or,
// with grpcWeb, over gRPC-Web. The API must list the page's origin in
// --cors-origins.
export function latchkeyClients(baseUrl: string, apiKey: string, grpcWeb = false) {
  const withKey: Interceptor = (next) => (req) => {
    req.header.set("Authorization", `Bearer ${apiKey}`);
    return next(req);
  };
  const transport = (grpcWeb ? createGrpcWebTransport : createConnectTransport)({
    baseUrl,
    interceptors: [withKey],
  });
  return {
    keys: createClient(ApiKeyService, transport),
    auth: createClient(AuthService, transport),
  };
}
// end client: connect-web
