/**
 * Reduces a model reply to the code it carries: fences and the prose around them are dropped,
 * a fence still open while streaming yields what has arrived so far, and when a reply holds
 * several blocks the one whose language suits the target wins.
 */
import type { Target } from '../protocol/targets';

export interface ExtractedCode {
  code: string;
  /** The language tag of the chosen fence ('' when untagged or unfenced). */
  language: string;
  /** False while the chosen fence has not been closed yet. */
  complete: boolean;
}

interface Block {
  language: string;
  body: string;
  closed: boolean;
}

const LANGUAGES_BY_TARGET: Record<Target, string[]> = {
  html: ['html', 'htm', 'xhtml'],
  tailwind: ['html', 'htm', 'xhtml'],
  react: ['jsx', 'tsx', 'javascript', 'js', 'react', 'typescript', 'ts'],
  drawio: ['xml', 'drawio', 'mxgraph', 'mxfile'],
};

/** Where an unfenced reply's code starts, per target (prose before it is dropped). */
const UNFENCED_START: Record<Target, RegExp> = {
  html: /<!doctype html|<html|<(?:head|body|div|main|section|header|nav|style)\b/i,
  tailwind: /<!doctype html|<html|<(?:head|body|div|main|section|header|nav|script)\b/i,
  react: /^(?:import|export|const|function|'use client'|"use client")\b/m,
  drawio: /<\?xml|<mxfile\b|<mxGraphModel\b/,
};

/** Where an unfenced reply's code ends: after the last closing tag / statement. */
const UNFENCED_END: Partial<Record<Target, RegExp>> = {
  html: /<\/html>/i,
  tailwind: /<\/html>/i,
  drawio: /<\/mxfile>|<\/mxGraphModel>/,
};

const FENCE = /^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$/;

/** Drops a reasoning block (<think>...</think>) that thinking models emit first. */
function withoutThinking(reply: string): string {
  const closed = reply.replace(/<think>[\s\S]*?<\/think>/g, '');
  const open = closed.indexOf('<think>');
  return open >= 0 ? closed.slice(0, open) : closed;
}

function fencedBlocks(text: string): { blocks: Block[]; pendingFenceLine: boolean } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let current: { fence: string; language: string; lines: string[] } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const isLastLine = i === lines.length - 1;
    const match = FENCE.exec(line);
    if (!current) {
      if (!match) continue;
      // An opening fence line that is still arriving: its language tag may be incomplete.
      if (isLastLine) return { blocks, pendingFenceLine: true };
      current = { fence: match[1]!, language: match[2]!.toLowerCase(), lines: [] };
    } else if (
      match &&
      match[2] === '' &&
      match[1]![0] === current.fence[0] &&
      match[1]!.length >= current.fence.length
    ) {
      blocks.push({ language: current.language, body: current.lines.join('\n'), closed: true });
      current = undefined;
    } else if (!(isLastLine && /^[ \t]*[`~]{1,2}$/.test(line))) {
      // A last line of one or two backticks may be a closing fence still arriving: hold it back.
      current.lines.push(line);
    }
  }
  if (current)
    blocks.push({ language: current.language, body: current.lines.join('\n'), closed: false });
  return { blocks, pendingFenceLine: false };
}

function score(block: Block, target: Target): number {
  const wanted = LANGUAGES_BY_TARGET[target];
  const rank = wanted.indexOf(block.language);
  const languageScore = rank >= 0 ? 1000 - rank : block.language === '' ? 500 : 0;
  return languageScore * 1e7 + Math.min(block.body.length, 1e7 - 1);
}

/** Picks the block that best suits the target: a matching language first, then the longest. */
function pickBlock(blocks: Block[], target: Target): Block | undefined {
  let best: Block | undefined;
  for (const block of blocks) {
    if (!best || score(block, target) > score(best, target)) best = block;
  }
  return best;
}

function unfenced(text: string, target: Target, final: boolean): ExtractedCode {
  const start = UNFENCED_START[target].exec(text);
  if (!start) {
    // Prose only so far. At the end, the whole reply is all there is: keep it, lose nothing.
    return { code: final ? text.trim() : '', language: '', complete: final };
  }
  let code = text.slice(start.index);
  const endPattern = UNFENCED_END[target];
  if (endPattern) {
    const global = new RegExp(endPattern.source, endPattern.flags + 'g');
    let lastEnd = -1;
    for (const m of code.matchAll(global)) lastEnd = m.index! + m[0].length;
    if (lastEnd >= 0) code = code.slice(0, lastEnd);
  }
  return { code: final ? code.trim() : code.trimStart(), language: '', complete: final };
}

/**
 * Extracts the code for `target` from a (possibly partial) model reply. `final` says the reply
 * is complete; while streaming, text that might still turn out to be a fence is held back.
 */
export function extractCode(reply: string, target: Target, final: boolean): ExtractedCode {
  const text = withoutThinking(reply.replace(/\r\n/g, '\n'));
  const { blocks, pendingFenceLine } = fencedBlocks(text);
  const block = pickBlock(blocks, target);
  if (block) {
    const code = block.closed || final ? block.body.replace(/\s+$/, '') : block.body;
    return { code, language: block.language, complete: block.closed || final };
  }
  if (pendingFenceLine) return { code: '', language: '', complete: false };
  // While streaming, a reply that has not reached a fence yet may still open one later.
  if (!final && /^\s*$/.test(text)) return { code: '', language: '', complete: false };
  return unfenced(text, target, final);
}
