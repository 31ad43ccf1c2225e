/**
 * Checks Draw.io XML the model wrote: well-formed, an mxfile or mxGraphModel root, unique
 * cell ids, edges whose source and target exist, parents that exist. Problems are reported,
 * never fatal: the caller still inserts the XML with a warning.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { decompressDiagram } from './compression';

export interface DiagramCheck {
  /** True when the XML parsed and has a known root (it may still have cell problems). */
  wellFormed: boolean;
  root?: 'mxfile' | 'mxGraphModel';
  problems: string[];
  cellCount: number;
}

type Node = Record<string, unknown>;

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  preserveOrder: false,
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (name) => ['diagram', 'mxCell', 'object', 'UserObject'].includes(name),
});

interface CellRefs {
  id?: string;
  parent?: string;
  source?: string;
  target?: string;
  edge: boolean;
}

/** What an mxCell refers to; `id` is the wrapper's for a cell inside object/UserObject. */
function cellRefs(cell: Node, id: unknown): CellRefs {
  return {
    id: id as string | undefined,
    parent: cell['@parent'] as string | undefined,
    source: cell['@source'] as string | undefined,
    target: cell['@target'] as string | undefined,
    edge: cell['@edge'] === '1',
  };
}

/** The cells of one mxGraphModel: mxCell elements, bare or wrapped in object/UserObject. */
function cellsOf(model: Node): CellRefs[] {
  const root = model['root'] as Node | undefined;
  if (!root || typeof root !== 'object') return [];
  const cells = ((root['mxCell'] as Node[] | undefined) ?? []).map((cell) =>
    cellRefs(cell, cell['@id']),
  );
  for (const wrapper of [
    ...((root['object'] as Node[] | undefined) ?? []),
    ...((root['UserObject'] as Node[] | undefined) ?? []),
  ]) {
    const inner = ((wrapper['mxCell'] as Node[] | undefined) ?? [])[0] ?? {};
    cells.push(cellRefs(inner, wrapper['@id']));
  }
  return cells;
}

function checkModel(model: Node, page: string, problems: string[]): number {
  const cells = cellsOf(model);
  if (cells.length === 0) problems.push(`${page}has no cells.`);
  const ids = new Set<string>();
  for (const [index, cell] of cells.entries()) {
    if (cell.id === undefined || cell.id === '') {
      problems.push(`${page}cell #${index + 1} has no id.`);
      continue;
    }
    if (ids.has(cell.id)) problems.push(`${page}cell id "${cell.id}" is used more than once.`);
    ids.add(cell.id);
  }
  for (const cell of cells) {
    const name = cell.id ? `"${cell.id}"` : 'without an id';
    if (cell.parent !== undefined && !ids.has(cell.parent)) {
      problems.push(`${page}cell ${name} has parent "${cell.parent}", which does not exist.`);
    }
    if (!cell.edge) continue;
    for (const end of ['source', 'target'] as const) {
      const ref = cell[end];
      if (ref !== undefined && !ids.has(ref)) {
        problems.push(`${page}edge ${name} has ${end} "${ref}", which does not exist.`);
      }
    }
  }
  return cells.length;
}

function parseInner(text: string, page: string, problems: string[]): Node | undefined {
  let xml: string;
  try {
    xml = decompressDiagram(text);
  } catch {
    problems.push(`${page}holds neither an mxGraphModel nor compressed diagram data.`);
    return undefined;
  }
  const inner = parser.parse(xml) as Node;
  const model = inner['mxGraphModel'];
  if (!model || typeof model !== 'object') {
    problems.push(`${page}compressed data does not hold an mxGraphModel.`);
    return undefined;
  }
  return model as Node;
}

export function checkDiagram(xml: string): DiagramCheck {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    return {
      wellFormed: false,
      problems: [`The XML is not well-formed: ${msg} (line ${line}, column ${col}).`],
      cellCount: 0,
    };
  }
  const document = parser.parse(xml) as Node;
  const problems: string[] = [];
  let cellCount = 0;
  if (document['mxfile'] !== undefined) {
    const file = (typeof document['mxfile'] === 'object' ? document['mxfile'] : {}) as Node;
    const diagrams = (file['diagram'] as (Node | string)[] | undefined) ?? [];
    if (diagrams.length === 0) problems.push('The mxfile has no <diagram> page.');
    diagrams.forEach((diagram, index) => {
      const page = diagrams.length > 1 ? `Page ${index + 1}: ` : '';
      const node: Node = typeof diagram === 'string' ? { '#text': diagram } : diagram;
      let model = node['mxGraphModel'] as Node | undefined;
      if (!model && typeof node['#text'] === 'string')
        model = parseInner(node['#text'], page, problems);
      else if (!model) problems.push(`${page}the <diagram> holds no mxGraphModel.`);
      if (model) cellCount += checkModel(model, page, problems);
    });
    return { wellFormed: true, root: 'mxfile', problems, cellCount };
  }
  if (document['mxGraphModel'] !== undefined) {
    const model = (
      typeof document['mxGraphModel'] === 'object' ? document['mxGraphModel'] : {}
    ) as Node;
    cellCount = checkModel(model, '', problems);
    return { wellFormed: true, root: 'mxGraphModel', problems, cellCount };
  }
  const rootName = Object.keys(document).find((key) => !key.startsWith('?')) ?? 'none';
  return {
    wellFormed: true,
    problems: [`The root element is <${rootName}>; Draw.io needs <mxfile> or <mxGraphModel>.`],
    cellCount: 0,
  };
}
