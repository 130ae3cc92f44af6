/**
 * Checks the project's .proto files against the etcd v3 wire protocol.
 *
 * The expected tables below were written by hand from etcd 3.4's own .proto
 * files (plus the fields and methods added in 3.5 and 3.6, marked as such),
 * so a wrong field number, type, label, oneof or streaming flag fails here.
 * Both loaders the server may use are exercised: protobufjs directly and
 * @grpc/proto-loader (what @grpc/grpc-js consumes).
 */
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';

const PROTO_DIR = path.resolve(__dirname, '../../proto');

const PROTO_FILES = [
  'mvccpb/kv.proto',
  'authpb/auth.proto',
  'etcdserverpb/rpc.proto',
  'v3lockpb/v3lock.proto',
  'v3electionpb/v3election.proto',
  'grpc/health/v1/health.proto',
];

/** Loads every file with imports resolved against the proto root, as protoc -I proto would. */
function loadProtobufjs(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string =>
    path.isAbsolute(target) ? target : path.join(PROTO_DIR, target);
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

function loadProtoLoader(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    bytes: Buffer,
    defaults: false,
    oneofs: true,
  });
}

// ---------------------------------------------------------------------------
// Expected services: [method, request, response, client streams, server streams]
// ---------------------------------------------------------------------------

type MethodSpec = readonly [string, string, string, boolean, boolean];

const SERVICES: Record<string, readonly MethodSpec[]> = {
  'etcdserverpb.KV': [
    ['Range', 'etcdserverpb.RangeRequest', 'etcdserverpb.RangeResponse', false, false],
    ['Put', 'etcdserverpb.PutRequest', 'etcdserverpb.PutResponse', false, false],
    ['DeleteRange', 'etcdserverpb.DeleteRangeRequest', 'etcdserverpb.DeleteRangeResponse', false, false],
    ['Txn', 'etcdserverpb.TxnRequest', 'etcdserverpb.TxnResponse', false, false],
    ['Compact', 'etcdserverpb.CompactionRequest', 'etcdserverpb.CompactionResponse', false, false],
  ],
  'etcdserverpb.Watch': [['Watch', 'etcdserverpb.WatchRequest', 'etcdserverpb.WatchResponse', true, true]],
  'etcdserverpb.Lease': [
    ['LeaseGrant', 'etcdserverpb.LeaseGrantRequest', 'etcdserverpb.LeaseGrantResponse', false, false],
    ['LeaseRevoke', 'etcdserverpb.LeaseRevokeRequest', 'etcdserverpb.LeaseRevokeResponse', false, false],
    ['LeaseKeepAlive', 'etcdserverpb.LeaseKeepAliveRequest', 'etcdserverpb.LeaseKeepAliveResponse', true, true],
    ['LeaseTimeToLive', 'etcdserverpb.LeaseTimeToLiveRequest', 'etcdserverpb.LeaseTimeToLiveResponse', false, false],
    ['LeaseLeases', 'etcdserverpb.LeaseLeasesRequest', 'etcdserverpb.LeaseLeasesResponse', false, false],
  ],
  'etcdserverpb.Cluster': [
    ['MemberAdd', 'etcdserverpb.MemberAddRequest', 'etcdserverpb.MemberAddResponse', false, false],
    ['MemberRemove', 'etcdserverpb.MemberRemoveRequest', 'etcdserverpb.MemberRemoveResponse', false, false],
    ['MemberUpdate', 'etcdserverpb.MemberUpdateRequest', 'etcdserverpb.MemberUpdateResponse', false, false],
    ['MemberList', 'etcdserverpb.MemberListRequest', 'etcdserverpb.MemberListResponse', false, false],
    ['MemberPromote', 'etcdserverpb.MemberPromoteRequest', 'etcdserverpb.MemberPromoteResponse', false, false],
  ],
  'etcdserverpb.Maintenance': [
    ['Alarm', 'etcdserverpb.AlarmRequest', 'etcdserverpb.AlarmResponse', false, false],
    ['Status', 'etcdserverpb.StatusRequest', 'etcdserverpb.StatusResponse', false, false],
    ['Defragment', 'etcdserverpb.DefragmentRequest', 'etcdserverpb.DefragmentResponse', false, false],
    ['Hash', 'etcdserverpb.HashRequest', 'etcdserverpb.HashResponse', false, false],
    ['HashKV', 'etcdserverpb.HashKVRequest', 'etcdserverpb.HashKVResponse', false, false],
    ['Snapshot', 'etcdserverpb.SnapshotRequest', 'etcdserverpb.SnapshotResponse', false, true],
    ['MoveLeader', 'etcdserverpb.MoveLeaderRequest', 'etcdserverpb.MoveLeaderResponse', false, false],
    // 3.5+
    ['Downgrade', 'etcdserverpb.DowngradeRequest', 'etcdserverpb.DowngradeResponse', false, false],
  ],
  'etcdserverpb.Auth': [
    ['AuthEnable', 'etcdserverpb.AuthEnableRequest', 'etcdserverpb.AuthEnableResponse', false, false],
    ['AuthDisable', 'etcdserverpb.AuthDisableRequest', 'etcdserverpb.AuthDisableResponse', false, false],
    // 3.5+
    ['AuthStatus', 'etcdserverpb.AuthStatusRequest', 'etcdserverpb.AuthStatusResponse', false, false],
    ['Authenticate', 'etcdserverpb.AuthenticateRequest', 'etcdserverpb.AuthenticateResponse', false, false],
    ['UserAdd', 'etcdserverpb.AuthUserAddRequest', 'etcdserverpb.AuthUserAddResponse', false, false],
    ['UserGet', 'etcdserverpb.AuthUserGetRequest', 'etcdserverpb.AuthUserGetResponse', false, false],
    ['UserList', 'etcdserverpb.AuthUserListRequest', 'etcdserverpb.AuthUserListResponse', false, false],
    ['UserDelete', 'etcdserverpb.AuthUserDeleteRequest', 'etcdserverpb.AuthUserDeleteResponse', false, false],
    [
      'UserChangePassword',
      'etcdserverpb.AuthUserChangePasswordRequest',
      'etcdserverpb.AuthUserChangePasswordResponse',
      false,
      false,
    ],
    ['UserGrantRole', 'etcdserverpb.AuthUserGrantRoleRequest', 'etcdserverpb.AuthUserGrantRoleResponse', false, false],
    ['UserRevokeRole', 'etcdserverpb.AuthUserRevokeRoleRequest', 'etcdserverpb.AuthUserRevokeRoleResponse', false, false],
    ['RoleAdd', 'etcdserverpb.AuthRoleAddRequest', 'etcdserverpb.AuthRoleAddResponse', false, false],
    ['RoleGet', 'etcdserverpb.AuthRoleGetRequest', 'etcdserverpb.AuthRoleGetResponse', false, false],
    ['RoleList', 'etcdserverpb.AuthRoleListRequest', 'etcdserverpb.AuthRoleListResponse', false, false],
    ['RoleDelete', 'etcdserverpb.AuthRoleDeleteRequest', 'etcdserverpb.AuthRoleDeleteResponse', false, false],
    [
      'RoleGrantPermission',
      'etcdserverpb.AuthRoleGrantPermissionRequest',
      'etcdserverpb.AuthRoleGrantPermissionResponse',
      false,
      false,
    ],
    [
      'RoleRevokePermission',
      'etcdserverpb.AuthRoleRevokePermissionRequest',
      'etcdserverpb.AuthRoleRevokePermissionResponse',
      false,
      false,
    ],
  ],
  'v3lockpb.Lock': [
    ['Lock', 'v3lockpb.LockRequest', 'v3lockpb.LockResponse', false, false],
    ['Unlock', 'v3lockpb.UnlockRequest', 'v3lockpb.UnlockResponse', false, false],
  ],
  'v3electionpb.Election': [
    ['Campaign', 'v3electionpb.CampaignRequest', 'v3electionpb.CampaignResponse', false, false],
    ['Proclaim', 'v3electionpb.ProclaimRequest', 'v3electionpb.ProclaimResponse', false, false],
    ['Leader', 'v3electionpb.LeaderRequest', 'v3electionpb.LeaderResponse', false, false],
    ['Observe', 'v3electionpb.LeaderRequest', 'v3electionpb.LeaderResponse', false, true],
    ['Resign', 'v3electionpb.ResignRequest', 'v3electionpb.ResignResponse', false, false],
  ],
  'grpc.health.v1.Health': [
    ['Check', 'grpc.health.v1.HealthCheckRequest', 'grpc.health.v1.HealthCheckResponse', false, false],
    ['Watch', 'grpc.health.v1.HealthCheckRequest', 'grpc.health.v1.HealthCheckResponse', false, true],
  ],
};

// ---------------------------------------------------------------------------
// Expected fields: [name, number, type, repeated, oneof]. The type is a
// scalar name or the full name of a message or enum. The list for each
// message is complete: a missing or extra field fails.
// ---------------------------------------------------------------------------

type FieldSpec = readonly [string, number, string, boolean, string | null];

const HDR = 'etcdserverpb.ResponseHeader';
const KV = 'mvccpb.KeyValue';

const MESSAGES: Record<string, readonly FieldSpec[]> = {
  'mvccpb.KeyValue': [
    ['key', 1, 'bytes', false, null],
    ['create_revision', 2, 'int64', false, null],
    ['mod_revision', 3, 'int64', false, null],
    ['version', 4, 'int64', false, null],
    ['value', 5, 'bytes', false, null],
    ['lease', 6, 'int64', false, null],
  ],
  'mvccpb.Event': [
    ['type', 1, 'mvccpb.Event.EventType', false, null],
    ['kv', 2, KV, false, null],
    ['prev_kv', 3, KV, false, null],
  ],
  'authpb.Permission': [
    ['permType', 1, 'authpb.Permission.Type', false, null],
    ['key', 2, 'bytes', false, null],
    ['range_end', 3, 'bytes', false, null],
  ],
  'authpb.User': [
    ['name', 1, 'bytes', false, null],
    ['password', 2, 'bytes', false, null],
    ['roles', 3, 'string', true, null],
    ['options', 4, 'authpb.UserAddOptions', false, null],
  ],
  'authpb.Role': [
    ['name', 1, 'bytes', false, null],
    ['keyPermission', 2, 'authpb.Permission', true, null],
  ],
  'etcdserverpb.ResponseHeader': [
    ['cluster_id', 1, 'uint64', false, null],
    ['member_id', 2, 'uint64', false, null],
    ['revision', 3, 'int64', false, null],
    ['raft_term', 4, 'uint64', false, null],
  ],
  'etcdserverpb.RangeRequest': [
    ['key', 1, 'bytes', false, null],
    ['range_end', 2, 'bytes', false, null],
    ['limit', 3, 'int64', false, null],
    ['revision', 4, 'int64', false, null],
    ['sort_order', 5, 'etcdserverpb.RangeRequest.SortOrder', false, null],
    ['sort_target', 6, 'etcdserverpb.RangeRequest.SortTarget', false, null],
    ['serializable', 7, 'bool', false, null],
    ['keys_only', 8, 'bool', false, null],
    ['count_only', 9, 'bool', false, null],
    ['min_mod_revision', 10, 'int64', false, null],
    ['max_mod_revision', 11, 'int64', false, null],
    ['min_create_revision', 12, 'int64', false, null],
    ['max_create_revision', 13, 'int64', false, null],
  ],
  'etcdserverpb.RangeResponse': [
    ['header', 1, HDR, false, null],
    ['kvs', 2, KV, true, null],
    ['more', 3, 'bool', false, null],
    ['count', 4, 'int64', false, null],
  ],
  'etcdserverpb.PutRequest': [
    ['key', 1, 'bytes', false, null],
    ['value', 2, 'bytes', false, null],
    ['lease', 3, 'int64', false, null],
    ['prev_kv', 4, 'bool', false, null],
    ['ignore_value', 5, 'bool', false, null],
    ['ignore_lease', 6, 'bool', false, null],
  ],
  'etcdserverpb.PutResponse': [
    ['header', 1, HDR, false, null],
    ['prev_kv', 2, KV, false, null],
  ],
  'etcdserverpb.DeleteRangeRequest': [
    ['key', 1, 'bytes', false, null],
    ['range_end', 2, 'bytes', false, null],
    ['prev_kv', 3, 'bool', false, null],
  ],
  'etcdserverpb.DeleteRangeResponse': [
    ['header', 1, HDR, false, null],
    ['deleted', 2, 'int64', false, null],
    ['prev_kvs', 3, KV, true, null],
  ],
  'etcdserverpb.RequestOp': [
    ['request_range', 1, 'etcdserverpb.RangeRequest', false, 'request'],
    ['request_put', 2, 'etcdserverpb.PutRequest', false, 'request'],
    ['request_delete_range', 3, 'etcdserverpb.DeleteRangeRequest', false, 'request'],
    ['request_txn', 4, 'etcdserverpb.TxnRequest', false, 'request'],
  ],
  'etcdserverpb.ResponseOp': [
    ['response_range', 1, 'etcdserverpb.RangeResponse', false, 'response'],
    ['response_put', 2, 'etcdserverpb.PutResponse', false, 'response'],
    ['response_delete_range', 3, 'etcdserverpb.DeleteRangeResponse', false, 'response'],
    ['response_txn', 4, 'etcdserverpb.TxnResponse', false, 'response'],
  ],
  'etcdserverpb.Compare': [
    ['result', 1, 'etcdserverpb.Compare.CompareResult', false, null],
    ['target', 2, 'etcdserverpb.Compare.CompareTarget', false, null],
    ['key', 3, 'bytes', false, null],
    ['version', 4, 'int64', false, 'target_union'],
    ['create_revision', 5, 'int64', false, 'target_union'],
    ['mod_revision', 6, 'int64', false, 'target_union'],
    ['value', 7, 'bytes', false, 'target_union'],
    ['lease', 8, 'int64', false, 'target_union'],
    ['range_end', 64, 'bytes', false, null],
  ],
  'etcdserverpb.TxnRequest': [
    ['compare', 1, 'etcdserverpb.Compare', true, null],
    ['success', 2, 'etcdserverpb.RequestOp', true, null],
    ['failure', 3, 'etcdserverpb.RequestOp', true, null],
  ],
  'etcdserverpb.TxnResponse': [
    ['header', 1, HDR, false, null],
    ['succeeded', 2, 'bool', false, null],
    ['responses', 3, 'etcdserverpb.ResponseOp', true, null],
  ],
  'etcdserverpb.CompactionRequest': [
    ['revision', 1, 'int64', false, null],
    ['physical', 2, 'bool', false, null],
  ],
  'etcdserverpb.HashKVResponse': [
    ['header', 1, HDR, false, null],
    ['hash', 2, 'uint32', false, null],
    ['compact_revision', 3, 'int64', false, null],
    ['hash_revision', 4, 'int64', false, null], // 3.6+
  ],
  'etcdserverpb.SnapshotResponse': [
    ['header', 1, HDR, false, null],
    ['remaining_bytes', 2, 'uint64', false, null],
    ['blob', 3, 'bytes', false, null],
    ['version', 4, 'string', false, null], // 3.6+
  ],
  'etcdserverpb.WatchRequest': [
    ['create_request', 1, 'etcdserverpb.WatchCreateRequest', false, 'request_union'],
    ['cancel_request', 2, 'etcdserverpb.WatchCancelRequest', false, 'request_union'],
    ['progress_request', 3, 'etcdserverpb.WatchProgressRequest', false, 'request_union'],
  ],
  'etcdserverpb.WatchCreateRequest': [
    ['key', 1, 'bytes', false, null],
    ['range_end', 2, 'bytes', false, null],
    ['start_revision', 3, 'int64', false, null],
    ['progress_notify', 4, 'bool', false, null],
    ['filters', 5, 'etcdserverpb.WatchCreateRequest.FilterType', true, null],
    ['prev_kv', 6, 'bool', false, null],
    ['watch_id', 7, 'int64', false, null],
    ['fragment', 8, 'bool', false, null],
  ],
  'etcdserverpb.WatchCancelRequest': [['watch_id', 1, 'int64', false, null]],
  'etcdserverpb.WatchProgressRequest': [],
  'etcdserverpb.WatchResponse': [
    ['header', 1, HDR, false, null],
    ['watch_id', 2, 'int64', false, null],
    ['created', 3, 'bool', false, null],
    ['canceled', 4, 'bool', false, null],
    ['compact_revision', 5, 'int64', false, null],
    ['cancel_reason', 6, 'string', false, null],
    ['fragment', 7, 'bool', false, null],
    ['events', 11, 'mvccpb.Event', true, null],
  ],
  'etcdserverpb.LeaseGrantRequest': [
    ['TTL', 1, 'int64', false, null],
    ['ID', 2, 'int64', false, null],
  ],
  'etcdserverpb.LeaseGrantResponse': [
    ['header', 1, HDR, false, null],
    ['ID', 2, 'int64', false, null],
    ['TTL', 3, 'int64', false, null],
    ['error', 4, 'string', false, null],
  ],
  'etcdserverpb.LeaseKeepAliveResponse': [
    ['header', 1, HDR, false, null],
    ['ID', 2, 'int64', false, null],
    ['TTL', 3, 'int64', false, null],
  ],
  'etcdserverpb.LeaseTimeToLiveRequest': [
    ['ID', 1, 'int64', false, null],
    ['keys', 2, 'bool', false, null],
  ],
  'etcdserverpb.LeaseTimeToLiveResponse': [
    ['header', 1, HDR, false, null],
    ['ID', 2, 'int64', false, null],
    ['TTL', 3, 'int64', false, null],
    ['grantedTTL', 4, 'int64', false, null],
    ['keys', 5, 'bytes', true, null],
  ],
  'etcdserverpb.LeaseCheckpoint': [
    ['ID', 1, 'int64', false, null],
    ['remaining_TTL', 2, 'int64', false, null],
  ],
  'etcdserverpb.Member': [
    ['ID', 1, 'uint64', false, null],
    ['name', 2, 'string', false, null],
    ['peerURLs', 3, 'string', true, null],
    ['clientURLs', 4, 'string', true, null],
    ['isLearner', 5, 'bool', false, null],
  ],
  'etcdserverpb.MemberAddRequest': [
    ['peerURLs', 1, 'string', true, null],
    ['isLearner', 2, 'bool', false, null],
  ],
  'etcdserverpb.MemberListRequest': [['linearizable', 1, 'bool', false, null]], // 3.5+
  'etcdserverpb.AlarmRequest': [
    ['action', 1, 'etcdserverpb.AlarmRequest.AlarmAction', false, null],
    ['memberID', 2, 'uint64', false, null],
    ['alarm', 3, 'etcdserverpb.AlarmType', false, null],
  ],
  'etcdserverpb.AlarmMember': [
    ['memberID', 1, 'uint64', false, null],
    ['alarm', 2, 'etcdserverpb.AlarmType', false, null],
  ],
  'etcdserverpb.StatusResponse': [
    ['header', 1, HDR, false, null],
    ['version', 2, 'string', false, null],
    ['dbSize', 3, 'int64', false, null],
    ['leader', 4, 'uint64', false, null],
    ['raftIndex', 5, 'uint64', false, null],
    ['raftTerm', 6, 'uint64', false, null],
    ['raftAppliedIndex', 7, 'uint64', false, null],
    ['errors', 8, 'string', true, null],
    ['dbSizeInUse', 9, 'int64', false, null],
    ['isLearner', 10, 'bool', false, null],
    ['storageVersion', 11, 'string', false, null], // 3.6+
    ['dbSizeQuota', 12, 'int64', false, null], // 3.6+
    ['downgradeInfo', 13, 'etcdserverpb.DowngradeInfo', false, null], // 3.6+
  ],
  // 3.5+ / 3.6+ messages
  'etcdserverpb.DowngradeRequest': [
    ['action', 1, 'etcdserverpb.DowngradeRequest.DowngradeAction', false, null],
    ['version', 2, 'string', false, null],
  ],
  'etcdserverpb.DowngradeResponse': [
    ['header', 1, HDR, false, null],
    ['version', 2, 'string', false, null],
  ],
  'etcdserverpb.DowngradeInfo': [
    ['enabled', 1, 'bool', false, null],
    ['targetVersion', 2, 'string', false, null],
  ],
  'etcdserverpb.AuthStatusResponse': [
    ['header', 1, HDR, false, null],
    ['enabled', 2, 'bool', false, null],
    ['authRevision', 3, 'uint64', false, null],
  ],
  'etcdserverpb.AuthUserAddRequest': [
    ['name', 1, 'string', false, null],
    ['password', 2, 'string', false, null],
    ['options', 3, 'authpb.UserAddOptions', false, null],
    ['hashedPassword', 4, 'string', false, null], // 3.5+
  ],
  'etcdserverpb.AuthRoleGrantPermissionRequest': [
    ['name', 1, 'string', false, null],
    ['perm', 2, 'authpb.Permission', false, null],
  ],
  'etcdserverpb.AuthRoleRevokePermissionRequest': [
    ['role', 1, 'string', false, null],
    ['key', 2, 'bytes', false, null],
    ['range_end', 3, 'bytes', false, null],
  ],
  'v3lockpb.LockRequest': [
    ['name', 1, 'bytes', false, null],
    ['lease', 2, 'int64', false, null],
  ],
  'v3lockpb.LockResponse': [
    ['header', 1, HDR, false, null],
    ['key', 2, 'bytes', false, null],
  ],
  'v3electionpb.CampaignRequest': [
    ['name', 1, 'bytes', false, null],
    ['lease', 2, 'int64', false, null],
    ['value', 3, 'bytes', false, null],
  ],
  'v3electionpb.LeaderKey': [
    ['name', 1, 'bytes', false, null],
    ['key', 2, 'bytes', false, null],
    ['rev', 3, 'int64', false, null],
    ['lease', 4, 'int64', false, null],
  ],
  'v3electionpb.LeaderResponse': [
    ['header', 1, HDR, false, null],
    ['kv', 2, KV, false, null],
  ],
  'v3electionpb.ProclaimRequest': [
    ['leader', 1, 'v3electionpb.LeaderKey', false, null],
    ['value', 2, 'bytes', false, null],
  ],
  'grpc.health.v1.HealthCheckRequest': [['service', 1, 'string', false, null]],
  'grpc.health.v1.HealthCheckResponse': [
    ['status', 1, 'grpc.health.v1.HealthCheckResponse.ServingStatus', false, null],
  ],
};

const ENUMS: Record<string, Record<string, number>> = {
  'mvccpb.Event.EventType': { PUT: 0, DELETE: 1 },
  'authpb.Permission.Type': { READ: 0, WRITE: 1, READWRITE: 2 },
  'etcdserverpb.RangeRequest.SortOrder': { NONE: 0, ASCEND: 1, DESCEND: 2 },
  'etcdserverpb.RangeRequest.SortTarget': { KEY: 0, VERSION: 1, CREATE: 2, MOD: 3, VALUE: 4 },
  'etcdserverpb.Compare.CompareResult': { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 },
  'etcdserverpb.Compare.CompareTarget': { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 },
  'etcdserverpb.WatchCreateRequest.FilterType': { NOPUT: 0, NODELETE: 1 },
  'etcdserverpb.AlarmType': { NONE: 0, NOSPACE: 1, CORRUPT: 2 },
  'etcdserverpb.AlarmRequest.AlarmAction': { GET: 0, ACTIVATE: 1, DEACTIVATE: 2 },
  'etcdserverpb.DowngradeRequest.DowngradeAction': { VALIDATE: 0, ENABLE: 1, CANCEL: 2 },
  'grpc.health.v1.HealthCheckResponse.ServingStatus': { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 },
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

function fullName(obj: protobuf.ReflectionObject): string {
  return obj.fullName.replace(/^\./, '');
}

/** A field described in the same shape as the expected table. */
function describeProtobufjsField(field: protobuf.Field): FieldSpec {
  const type = field.resolvedType === null ? field.type : fullName(field.resolvedType);
  return [field.name, field.id, type, field.repeated, field.partOf === null ? null : field.partOf.name];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function asRecord(value: unknown): Record<string, unknown> {
  if (!isRecord(value)) throw new Error(`expected an object, got ${String(value)}`);
  return value;
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error(`expected an array, got ${String(value)}`);
  return value;
}

interface DescriptorField {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}

/** The fields of a proto-loader message definition, read from its DescriptorProto. */
function descriptorFields(def: protoLoader.AnyDefinition | undefined): DescriptorField[] {
  if (def === undefined || def.format !== 'Protocol Buffer 3 DescriptorProto') {
    throw new Error('not a message definition');
  }
  const type = asRecord(def.type);
  return asArray(type['field']).map((raw): DescriptorField => {
    const f = asRecord(raw);
    const { name, number, label, type: fieldType, typeName } = f;
    if (
      typeof name !== 'string' ||
      typeof number !== 'number' ||
      typeof label !== 'string' ||
      typeof fieldType !== 'string' ||
      typeof typeName !== 'string'
    ) {
      throw new Error(`malformed field descriptor ${JSON.stringify(f)}`);
    }
    return { name, number, label, type: fieldType, typeName };
  });
}

function serviceDefinition(pkg: protoLoader.PackageDefinition, name: string): protoLoader.ServiceDefinition {
  const def = pkg[name];
  if (def === undefined || 'format' in def) throw new Error(`${name} is not a service`);
  return def as protoLoader.ServiceDefinition;
}

function method(
  pkg: protoLoader.PackageDefinition,
  service: string,
  name: string,
): protoLoader.MethodDefinition<object, object> {
  const m = serviceDefinition(pkg, service)[name];
  if (m === undefined) throw new Error(`${service}.${name} is missing`);
  return m;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function utf8(value: unknown): string {
  if (!(value instanceof Uint8Array)) throw new Error(`expected bytes, got ${String(value)}`);
  return Buffer.from(value).toString('utf8');
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: Buffer, oneofs: true };

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe('etcd v3 proto files', () => {
  const root = loadProtobufjs();
  const pkg = loadProtoLoader();

  describe('services (protobufjs)', () => {
    for (const [serviceName, methods] of Object.entries(SERVICES)) {
      test(`${serviceName} has exactly the etcd methods`, () => {
        const service = root.lookupService(serviceName);
        expect(service.methodsArray.map((m) => m.name)).toEqual(methods.map((m) => m[0]));
        for (const [name, req, res, reqStream, resStream] of methods) {
          const m = service.methods[name];
          if (m === undefined) throw new Error(`${serviceName}.${name} is missing`);
          m.resolve();
          expect([
            m.resolvedRequestType === null ? m.requestType : fullName(m.resolvedRequestType),
            m.resolvedResponseType === null ? m.responseType : fullName(m.resolvedResponseType),
            m.requestStream === true,
            m.responseStream === true,
          ]).toEqual([req, res, reqStream, resStream]);
        }
      });
    }

    test('KV has no RangeStream, so older-server behaviour (UNIMPLEMENTED) is what clients see', () => {
      expect(root.lookupService('etcdserverpb.KV').methods['RangeStream']).toBeUndefined();
      expect(root.lookup('etcdserverpb.RangeStreamResponse')).toBeNull();
    });
  });

  describe('services (@grpc/proto-loader)', () => {
    for (const [serviceName, methods] of Object.entries(SERVICES)) {
      test(`${serviceName} methods have the wire paths and streaming flags`, () => {
        const service = serviceDefinition(pkg, serviceName);
        expect(Object.keys(service).sort()).toEqual(methods.map((m) => m[0]).sort());
        for (const [name, , , reqStream, resStream] of methods) {
          const m = method(pkg, serviceName, name);
          expect([m.path, m.requestStream, m.responseStream]).toEqual([
            `/${serviceName}/${name}`,
            reqStream,
            resStream,
          ]);
        }
      });
    }
  });

  describe('message fields (protobufjs)', () => {
    for (const [messageName, fields] of Object.entries(MESSAGES)) {
      test(`${messageName}`, () => {
        const type = root.lookupType(messageName);
        const actual = type.fieldsArray.map(describeProtobufjsField).sort((a, b) => a[1] - b[1]);
        expect(actual).toEqual([...fields].sort((a, b) => a[1] - b[1]));
      });
    }

    test('oneof groups hold exactly the expected members', () => {
      const members = (message: string, oneof: string): string[] => {
        const group = root.lookupType(message).oneofs?.[oneof];
        if (group === undefined) throw new Error(`${message}.${oneof} is missing`);
        return group.fieldsArray.map((f) => f.name);
      };
      expect(members('etcdserverpb.Compare', 'target_union')).toEqual([
        'version',
        'create_revision',
        'mod_revision',
        'value',
        'lease',
      ]);
      expect(members('etcdserverpb.RequestOp', 'request')).toEqual([
        'request_range',
        'request_put',
        'request_delete_range',
        'request_txn',
      ]);
      expect(members('etcdserverpb.ResponseOp', 'response')).toEqual([
        'response_range',
        'response_put',
        'response_delete_range',
        'response_txn',
      ]);
      expect(members('etcdserverpb.WatchRequest', 'request_union')).toEqual([
        'create_request',
        'cancel_request',
        'progress_request',
      ]);
    });

    for (const [enumName, values] of Object.entries(ENUMS)) {
      test(`enum ${enumName}`, () => {
        expect(root.lookupEnum(enumName).values).toEqual(values);
      });
    }
  });

  describe('message fields (@grpc/proto-loader)', () => {
    const SCALARS = new Set(['bytes', 'string', 'bool', 'int64', 'uint64', 'int32', 'uint32']);
    for (const [messageName, fields] of Object.entries(MESSAGES)) {
      test(`${messageName}`, () => {
        const actual = descriptorFields(pkg[messageName]).sort((a, b) => a.number - b.number);
        const expected = [...fields]
          .sort((a, b) => a[1] - b[1])
          .map(([name, number, type, repeated]) => {
            const isScalar = SCALARS.has(type);
            const isEnum = type in ENUMS;
            return {
              name,
              number,
              label: repeated ? 'LABEL_REPEATED' : 'LABEL_OPTIONAL',
              type: isScalar ? `TYPE_${type.toUpperCase()}` : isEnum ? 'TYPE_ENUM' : 'TYPE_MESSAGE',
              // proto-loader may qualify the type name or not; compare the last segment.
              typeName: isScalar ? '' : (type.split('.').pop() ?? ''),
            };
          });
        expect(actual.map((f) => ({ ...f, typeName: f.typeName.split('.').pop() ?? '' }))).toEqual(expected);
      });
    }
  });

  describe('wire encoding', () => {
    test('RangeRequest encodes to the bytes etcd expects', () => {
      const type = root.lookupType('etcdserverpb.RangeRequest');
      const bytes = type.encode(type.fromObject({ key: Buffer.from('a'), range_end: Buffer.from('b'), limit: 5 })).finish();
      // field 1 (len) "a", field 2 (len) "b", field 3 (varint) 5
      expect(hex(bytes)).toBe('0a0161' + '120162' + '1805');
    });

    test('Compare puts mod_revision in field 6 and range_end in field 64', () => {
      const type = root.lookupType('etcdserverpb.Compare');
      const bytes = type
        .encode(
          type.fromObject({
            result: 'GREATER',
            target: 'MOD',
            key: Buffer.from('k'),
            mod_revision: 7,
            range_end: Buffer.from('l'),
          }),
        )
        .finish();
      // 08 01 result=1, 10 02 target=2, 1a 01 6b key, 30 07 field 6 = 7, 82 04 01 6c field 64 = "l"
      expect(hex(bytes)).toBe('0801' + '1002' + '1a016b' + '3007' + '8204016c');
    });

    test('WatchResponse events use field 11 and a negative int64 keeps ten varint bytes', () => {
      const type = root.lookupType('etcdserverpb.WatchResponse');
      const bytes = type.encode(type.fromObject({ watch_id: -1, events: [{ type: 'DELETE' }] })).finish();
      expect(hex(bytes)).toBe('10' + 'ffffffffffffffffff01' + '5a020801');
    });

    test('protobufjs and proto-loader produce identical bytes for a Txn', () => {
      const txn = {
        compare: [{ result: 'EQUAL', target: 'VERSION', key: Buffer.from('lock'), version: 0 }],
        success: [{ request_put: { key: Buffer.from('lock'), value: Buffer.from('me'), lease: '7587862153408453636' } }],
        failure: [{ request_range: { key: Buffer.from('lock') } }],
      };
      const type = root.lookupType('etcdserverpb.TxnRequest');
      const viaProtobufjs = type.encode(type.fromObject(txn)).finish();
      const viaLoader = method(pkg, 'etcdserverpb.KV', 'Txn').requestSerialize(txn);
      expect(hex(viaLoader)).toBe(hex(viaProtobufjs));
    });
  });

  describe('round trips', () => {
    test('PutRequest survives encode and decode', () => {
      const type = root.lookupType('etcdserverpb.PutRequest');
      const decoded = type.toObject(
        type.decode(
          type
            .encode(
              type.fromObject({
                key: Buffer.from('foo'),
                value: Buffer.from('bar'),
                lease: '9223372036854775807',
                prev_kv: true,
                ignore_lease: true,
              }),
            )
            .finish(),
        ),
        TO_OBJECT,
      );
      expect(utf8(decoded['key'])).toBe('foo');
      expect(utf8(decoded['value'])).toBe('bar');
      expect(decoded['lease']).toBe('9223372036854775807');
      expect(decoded['prev_kv']).toBe(true);
      expect(decoded['ignore_lease']).toBe(true);
      expect(decoded['ignore_value']).toBeUndefined();
    });

    test('ResponseHeader keeps the full uint64 range for cluster and member IDs', () => {
      const type = root.lookupType('etcdserverpb.ResponseHeader');
      const header = { cluster_id: '18446744073709551615', member_id: '9372538179322589801', revision: '42', raft_term: '3' };
      const decoded = type.toObject(type.decode(type.encode(type.fromObject(header)).finish()), TO_OBJECT);
      expect(decoded).toEqual(header);
    });

    test('a Txn with a Compare oneof decodes through proto-loader with the right branch', () => {
      const type = root.lookupType('etcdserverpb.TxnRequest');
      const bytes = type
        .encode(
          type.fromObject({
            compare: [{ result: 'LESS', target: 'CREATE', key: Buffer.from('k'), create_revision: 12 }],
            success: [{ request_delete_range: { key: Buffer.from('k'), prev_kv: true } }],
          }),
        )
        .finish();
      const decoded = asRecord(method(pkg, 'etcdserverpb.KV', 'Txn').requestDeserialize(Buffer.from(bytes)));
      const compare = asRecord(asArray(decoded['compare'])[0]);
      expect(compare['target_union']).toBe('create_revision');
      expect(compare['create_revision']).toBe('12');
      expect(compare['result']).toBe('LESS');
      expect(compare['target']).toBe('CREATE');
      const op = asRecord(asArray(decoded['success'])[0]);
      expect(op['request']).toBe('request_delete_range');
      expect(utf8(asRecord(op['request_delete_range'])['key'])).toBe('k');
    });

    test('a WatchResponse from proto-loader decodes in protobufjs with its events', () => {
      const response = {
        header: { cluster_id: '1', member_id: '2', revision: '9', raft_term: '4' },
        watch_id: '3',
        events: [
          {
            type: 'PUT',
            kv: { key: Buffer.from('a'), value: Buffer.from('1'), create_revision: '9', mod_revision: '9', version: '1' },
          },
          { type: 'DELETE', kv: { key: Buffer.from('b'), mod_revision: '9' } },
        ],
      };
      const bytes = method(pkg, 'etcdserverpb.Watch', 'Watch').responseSerialize(response);
      const type = root.lookupType('etcdserverpb.WatchResponse');
      const decoded = type.toObject(type.decode(bytes), TO_OBJECT);
      expect(asRecord(decoded['header'])['revision']).toBe('9');
      expect(decoded['watch_id']).toBe('3');
      const events = asArray(decoded['events']).map(asRecord);
      expect(events.map((e) => e['type'])).toEqual(['PUT', 'DELETE']);
      expect(events.map((e) => utf8(asRecord(e['kv'])['key']))).toEqual(['a', 'b']);
      expect(asRecord(events[0]?.['kv'])['version']).toBe('1');
    });

    test('StatusResponse carries the 3.6 fields', () => {
      const status = {
        version: '3.6.0',
        dbSize: '24576',
        leader: '10501334649042878790',
        errors: ['memberID:1 alarm:NOSPACE '],
        storageVersion: '3.6.0',
        dbSizeQuota: '2147483648',
        downgradeInfo: { enabled: true, targetVersion: '3.5.0' },
      };
      const bytes = method(pkg, 'etcdserverpb.Maintenance', 'Status').responseSerialize(status);
      const decoded = asRecord(method(pkg, 'etcdserverpb.Maintenance', 'Status').responseDeserialize(bytes));
      expect(decoded).toEqual(status);
    });
  });
});
