/**
 * A small ONNX graph builder: nodes, graph inputs/outputs and initializers, serialised with the
 * `onnx-proto` schema. Large initializers go to an external-data sink as soon as they are added,
 * so a multi-gigabyte model is never held in memory twice (and protobuf's 2 GB limit only ever
 * sees the graph structure).
 */
import { onnx } from 'onnx-proto';
import type { ExternalDataSink } from './external-data';
import { float32ToFloat16Bits } from './float16';

export const DataType = onnx.TensorProto.DataType;
export type DataType = onnx.TensorProto.DataType;

/** Bytes per element of the element types this engine writes. */
const BYTES: Partial<Record<DataType, number>> = {
  [DataType.FLOAT]: 4,
  [DataType.FLOAT16]: 2,
  [DataType.INT64]: 8,
  [DataType.INT32]: 4,
  [DataType.UINT8]: 1,
  [DataType.INT8]: 1,
  [DataType.BOOL]: 1,
};

export type Dim = number | string;

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'graph'; value: onnx.IGraphProto };

export const attr = {
  int: (value: number): AttributeValue => ({ kind: 'int', value }),
  float: (value: number): AttributeValue => ({ kind: 'float', value }),
  string: (value: string): AttributeValue => ({ kind: 'string', value }),
  ints: (value: number[]): AttributeValue => ({ kind: 'ints', value }),
  floats: (value: number[]): AttributeValue => ({ kind: 'floats', value }),
  graph: (value: onnx.IGraphProto): AttributeValue => ({ kind: 'graph', value }),
};

/** Tensor bytes, produced only when a sink actually wants them (dry runs never read weights). */
export type TensorBytes = () => Uint8Array;

/** Initializers at most this large are stored inline in the .onnx file. */
const INLINE_LIMIT = 1024;
const GENERATED = { generated: true };

/** What a graph shares with its subgraphs: value names are unique across the whole model. */
interface Scope {
  names: Set<string>;
  counter: number;
  nodeCount: number;
}

/** The graph that holds a builder's initializers (its own, or the outer graph's). */
interface InitializerHome {
  initializers: onnx.ITensorProto[];
  int64Constants: Map<string, string>;
}

const newHome = (): InitializerHome => ({ initializers: [], int64Constants: new Map() });

export class GraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];

  constructor(
    readonly name: string,
    private readonly sink: ExternalDataSink,
    private readonly scope: Scope = { names: new Set(), counter: 0, nodeCount: 0 },
    private readonly home: InitializerHome = newHome(),
  ) {}

  input(name: string, type: DataType, dims: Dim[]): string {
    this.claim(name);
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: DataType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** A fresh, unique value name with a readable prefix. */
  fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.scope.counter++}`;
    while (this.scope.names.has(name));
    return name;
  }

  /**
   * Adds a node and returns its output names. `outputs` is either explicit names or a count of
   * fresh names to create.
   */
  node(
    opType: string,
    inputs: string[],
    options: {
      outputs?: string[] | number;
      attrs?: Record<string, AttributeValue>;
      domain?: string;
      name?: string;
    } = {},
  ): string[] {
    const outputs =
      typeof options.outputs === 'object'
        ? options.outputs.map((n) => (n === '' ? n : this.claim(n))) // '': optional, not produced
        : Array.from({ length: options.outputs ?? 1 }, () =>
            this.claim(this.fresh(opType.toLowerCase())),
          );
    this.nodes.push({
      opType,
      domain: options.domain ?? '',
      name: options.name ?? `n${this.scope.nodeCount}_${opType}`,
      input: inputs,
      output: outputs,
      attribute: Object.entries(options.attrs ?? {}).map(([key, value]) => attribute(key, value)),
    });
    this.scope.nodeCount++;
    return outputs;
  }

  /**
   * A subgraph (an If branch): `build` adds its nodes to a builder that shares this graph's
   * names and initializers (constants it makes live in the outer graph, which a subgraph may
   * read, as it may read any outer value), and returns the values the subgraph outputs.
   * `ownInitializers`: the initializers it makes (its weights) are its own instead. onnxruntime
   * prepacks a subgraph's own weights, not those it reads from the outer graph: the CPU vision
   * tower's stages ran their 8-bit linears a third slower on outer weights.
   */
  subgraph(
    name: string,
    build: (g: GraphBuilder) => [string, DataType][],
    options: { ownInitializers?: boolean } = {},
  ): onnx.IGraphProto {
    const home = options.ownInitializers ? newHome() : this.home;
    const inner = new GraphBuilder(name, this.sink, this.scope, home);
    const outputs = build(inner).map(([value, elemType]) => ({
      name: value,
      type: { tensorType: { elemType } },
    }));
    const graph: onnx.IGraphProto = { name, node: inner.nodes, output: outputs };
    if (options.ownInitializers) graph.initializer = home.initializers;
    return graph;
  }

  /** Single-output shorthand for `node`. */
  op(
    opType: string,
    inputs: string[],
    attrs?: Record<string, AttributeValue>,
    domain?: string,
  ): string {
    return this.node(opType, inputs, { attrs, domain })[0];
  }

  /**
   * Adds an initializer. Its bytes are pulled from `bytes` right away (and streamed to the sink
   * when large), so callers can free their buffers as soon as this returns; not at all when the
   * sink already holds a large weight's bytes (`place`).
   */
  initializer(
    name: string,
    type: DataType,
    dims: number[],
    bytes: TensorBytes,
    options: { generated?: boolean } = {},
  ): string {
    this.claim(name);
    const size = BYTES[type];
    if (!size) throw new Error(`initializer ${name}: unsupported element type ${type}`);
    const length = dims.reduce((a, b) => a * b, 1) * size;
    const tensor: onnx.ITensorProto = { name, dataType: type, dims };
    // Generated constants are cheap to produce even in a dry run; weights are not read there.
    if (length <= INLINE_LIMIT && (options.generated || !this.sink.dryRun)) {
      tensor.rawData = checkedBytes(bytes(), length, name);
    } else {
      const key = tensorKey(name, type, dims);
      const place = this.sink.dryRun
        ? this.sink.reserve(length)
        : !options.generated && this.sink.place
          ? this.sink.place(key, length)
          : this.sink.write(checkedBytes(bytes(), length, name), key);
      tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      tensor.externalData = [
        { key: 'location', value: this.sink.fileName },
        { key: 'offset', value: String(place.offset) },
        { key: 'length', value: String(place.length) },
      ];
    }
    this.home.initializers.push(tensor);
    return name;
  }

  /** Small constant helpers (always inline). */
  constInt64(values: number[], dims: number[] = [values.length]): string {
    const key = `${dims}:${values}`;
    const cached = this.home.int64Constants.get(key);
    if (cached) return cached;
    const name = this.fresh('const_i64');
    this.home.int64Constants.set(key, name);
    return this.initializer(
      name,
      DataType.INT64,
      dims,
      () => {
        const out = new BigInt64Array(values.map((v) => BigInt(v)));
        return new Uint8Array(out.buffer);
      },
      GENERATED,
    );
  }

  /** A uint8 scalar (a zero point). */
  constUint8(value: number): string {
    return this.initializer(
      this.fresh('const_u8'),
      DataType.UINT8,
      [],
      () => Uint8Array.of(value),
      GENERATED,
    );
  }

  constFloat(values: number[], type: DataType, dims: number[] = [values.length]): string {
    const name = this.fresh('const_f');
    if (type === DataType.FLOAT16) {
      return this.initializer(
        name,
        type,
        dims,
        () => {
          const out = new Uint16Array(values.length);
          values.forEach((v, i) => (out[i] = float32ToFloat16Bits(v)));
          return new Uint8Array(out.buffer);
        },
        GENERATED,
      );
    }
    const bytes = () => new Uint8Array(new Float32Array(values).buffer);
    return this.initializer(name, type, dims, bytes, GENERATED);
  }

  /** Nodes in the model, subgraphs' included. */
  get nodeCount(): number {
    return this.scope.nodeCount;
  }

  /** Serialises the model (graph structure only; external data is already in the sink). */
  encode(opsets: { domain: string; version: number }[]): Uint8Array {
    const model: onnx.IModelProto = {
      irVersion: 9,
      producerName: 'design-to-code',
      opsetImport: opsets,
      graph: {
        name: this.name,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.home.initializers,
      },
    };
    return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
  }

  private claim(name: string): string {
    if (this.scope.names.has(name)) {
      // Reusing a name would silently rewire the graph; fail loudly instead.
      throw new Error(`ONNX value name "${name}" is defined twice in graph ${this.name}`);
    }
    this.scope.names.add(name);
    return name;
  }
}

function checkedBytes(bytes: Uint8Array, length: number, name: string): Uint8Array {
  if (bytes.byteLength !== length) {
    throw new Error(`initializer ${name}: expected ${length} bytes, got ${bytes.byteLength}`);
  }
  return bytes;
}

function valueInfo(name: string, elemType: DataType, dims: Dim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function attribute(name: string, value: AttributeValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (value.kind) {
    case 'int':
      return { name, type: T.INT, i: value.value };
    case 'float':
      return { name, type: T.FLOAT, f: value.value };
    case 'string':
      return { name, type: T.STRING, s: new TextEncoder().encode(value.value) };
    case 'ints':
      return { name, type: T.INTS, ints: value.value };
    case 'floats':
      return { name, type: T.FLOATS, floats: value.value };
    case 'graph':
      return { name, type: T.GRAPH, g: value.value };
  }
}

/** How an external data sink names a tensor: name, element type and dims. */
function tensorKey(name: string, type: DataType, dims: number[]): string {
  return `${name} ${DataType[type]} [${dims.join(',')}]`;
}
