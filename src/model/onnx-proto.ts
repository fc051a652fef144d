/**
 * The subset of onnx/onnx.proto (ONNX IR) that spg's graph builder writes, with the
 * field numbers of the official schema, encoded with protobufjs. Only what a GPT-Neo
 * inference graph needs: model, graph, nodes, attributes, tensors (inline or external
 * data), and value infos with symbolic dims.
 */
import { createRequire } from "node:module";
import type protobuf from "protobufjs";

const ONNX_SUBSET_PROTO = `
syntax = "proto2";
package onnx;

message AttributeProto {
  enum AttributeType {
    UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5;
    FLOATS = 6; INTS = 7; STRINGS = 8; TENSORS = 9; GRAPHS = 10;
  }
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  optional GraphProto g = 6;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  optional string doc_string = 13;
  optional AttributeType type = 20;
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
  optional string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string doc_string = 6;
  optional string domain = 7;
}

message StringStringEntryProto {
  optional string key = 1;
  optional string value = 2;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message ModelProto {
  optional int64 ir_version = 1;
  optional string producer_name = 2;
  optional string producer_version = 3;
  optional string domain = 4;
  optional int64 model_version = 5;
  optional string doc_string = 6;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  optional string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType {
    UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6;
    INT64 = 7; STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11;
  }
  enum DataLocation { DEFAULT = 0; EXTERNAL = 1; }
  repeated int64 dims = 1;
  optional int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  optional string doc_string = 12;
  repeated StringStringEntryProto external_data = 13;
  optional DataLocation data_location = 14;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    optional string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  optional string denotation = 6;
}
`;

/** ONNX TensorProto.DataType values used here. */
export const OnnxDataType = {
  FLOAT: 1,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

/** ONNX AttributeProto.AttributeType values used here. */
export const OnnxAttributeType = {
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
} as const;

/** TensorProto.DataLocation.EXTERNAL: the tensor's bytes live in a file next to the model. */
export const ONNX_DATA_LOCATION_EXTERNAL = 1;

let modelProtoType: protobuf.Type | undefined;

function modelType(): protobuf.Type {
  if (modelProtoType === undefined) {
    // Loaded when a graph is first encoded: `spg verify` reads the executed-bytes accounting
    // beside this module but encodes no graph unless it replays.
    const protobufjs = createRequire(import.meta.url)("protobufjs") as typeof protobuf;
    const root = protobufjs.parse(ONNX_SUBSET_PROTO, { keepCase: true }).root;
    modelProtoType = root.lookupType("onnx.ModelProto");
  }
  return modelProtoType;
}

/** Plain-object shapes of the messages (protobufjs keepCase: field names as in onnx.proto). */
export interface OnnxStringEntry {
  key: string;
  value: string;
}

export interface OnnxTensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  int64_data?: number[];
  external_data?: OnnxStringEntry[];
  data_location?: number;
}

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: OnnxTensor;
  /** A subgraph (If's branches). */
  g?: OnnxGraph;
  ints?: number[];
  floats?: number[];
}

export interface OnnxNode {
  name: string;
  op_type: string;
  input: string[];
  output: string[];
  attribute?: OnnxAttribute[];
  domain?: string;
}

export interface OnnxDimension {
  dim_value?: number;
  dim_param?: string;
}

export interface OnnxValueInfo {
  name: string;
  /** shape absent: any rank (a subgraph's output whose shape follows its inputs). */
  type: { tensor_type: { elem_type: number; shape?: { dim: OnnxDimension[] } } };
}

export interface OnnxGraph {
  name: string;
  node: OnnxNode[];
  initializer: OnnxTensor[];
  input: OnnxValueInfo[];
  output: OnnxValueInfo[];
  doc_string?: string;
}

export interface OnnxModel {
  ir_version: number;
  producer_name: string;
  producer_version: string;
  doc_string?: string;
  graph: OnnxGraph;
  opset_import: { domain: string; version: number }[];
  metadata_props?: OnnxStringEntry[];
}

/** Serialises a ModelProto to its protobuf bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  const type = modelType();
  const message = type.fromObject(model as unknown as Record<string, unknown>);
  return type.encode(message).finish();
}

/** Parses ModelProto bytes back into plain objects (tests, cache inspection). */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const type = modelType();
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Array, defaults: false }) as OnnxModel;
}
