/**
 * The conversation sent to the model for each target. A refinement continues the same
 * conversation: the image and first request, the model's replies and earlier changes (or the
 * code as it now stands, when the user edited it), then the new request.
 */
import type { ChatMessage } from '../openai/types';
import type { Target } from '../protocol/targets';

const SYSTEM =
  'You turn images of user interfaces and diagrams into code. Reply with one fenced code block ' +
  'holding the complete result and nothing else: no explanations before or after it. Write ' +
  'every part out in full: never abbreviate with "...", placeholders or comments such as ' +
  '"more items here".';

/** Pictures in a mockup cannot be fetched: a sized, coloured box keeps the layout instead. */
const IMAGES =
  'Draw photos, logos and icons as <div> boxes of the same size and main colour (or inline ' +
  'SVG for simple icons), never as external image URLs.';

const TASKS: Record<Target, string> = {
  html:
    'Write a single self-contained HTML file, from <!DOCTYPE html> to </html>, that reproduces ' +
    'this user interface as closely as possible: semantic HTML5 with all CSS in one <style> ' +
    'element in the <head>, matching the layout, spacing, colours and font sizes; no external ' +
    `resources, no JavaScript unless the interface needs it. ${IMAGES} Use the exact texts ` +
    'you see. Reply in a ```html block.',
  // Tailwind v4's CDN script, so the file works on its own in a browser; the live preview
  // compiles the same v4 utilities offline in its place (src/preview/tailwind.ts).
  tailwind:
    'Write a single HTML file, from <!DOCTYPE html> to </html>, that reproduces this user ' +
    'interface as closely as possible using Tailwind CSS v4 utility classes, loading Tailwind ' +
    'with its CDN script tag ' +
    '<script src="https://cdn.jsdelivr.net/npm/@tailwindcss/browser@4"></script> in the <head> ' +
    'so that the file works on its own in a browser; no tailwind.config and no other ' +
    'stylesheet unless a utility cannot express a style (arbitrary values such as ' +
    `bg-[#1e293b] are fine). ${IMAGES} Use the exact texts you see. Reply in a \`\`\`html block.`,
  react:
    'Write one React function component in JSX that reproduces this user interface as closely ' +
    "as possible, as a complete module: it starts with import React from 'react'; (add hooks " +
    'to that import only if used), and its component is `export default function App()`. No ' +
    'other imports, no TypeScript, no CSS files: styles go in style objects or in a <style> ' +
    'element the component renders, and attributes are JSX (className, htmlFor, style={{...}}). ' +
    `${IMAGES} Use the exact texts you see. Reply in a \`\`\`jsx block.`,
  drawio:
    'Write a Draw.io diagram that reproduces this image: an <mxfile> with one <diagram> holding ' +
    'an uncompressed <mxGraphModel>. Its <root> starts with <mxCell id="0"/> and ' +
    '<mxCell id="1" parent="0"/>; every shape is an mxCell with a unique id, its text in ' +
    'value, vertex="1", parent="1", a style and an <mxGeometry> with the x, y, width and ' +
    'height it has in the image and as="geometry"; every connector is an mxCell with a unique ' +
    'id, edge="1", parent="1", source and target set to ids of shapes, and a child ' +
    '<mxGeometry relative="1" as="geometry"/>. Escape &, < and " inside attribute values ' +
    '(&amp; &lt; &quot;). Reply in a ```xml block.',
};

export function imageDataUrl(bytes: Uint8Array, mimeType: string): string {
  return `data:${mimeType};base64,${Buffer.from(bytes).toString('base64')}`;
}

function withInstruction(task: string, instruction: string): string {
  const extra = instruction.trim();
  return extra ? `${task}\n\nAlso: ${extra}` : task;
}

/** The first request: system prompt, then the image and the task in one user message. */
export function generationMessages(
  target: Target,
  imageUrl: string,
  instruction: string,
): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM },
    {
      role: 'user',
      content: [
        { type: 'image_url', image_url: { url: imageUrl } },
        { type: 'text', text: withInstruction(TASKS[target], instruction) },
      ],
    },
  ];
}

/**
 * What a generation said after its first request, kept with it (history.ts) for a refinement
 * to continue (conversation.ts). The image lives in the history's own file, not here.
 */
export interface Conversation {
  /** The first request's extra instruction (withInstruction's "Also:"). */
  instruction: string;
  /** The text turns after the first request, the model's replies as it wrote them; the last is a reply. */
  turns: ChatMessage[];
}

/** The model's turn for code it did not write as it stands (edited, or cut off by max tokens). */
export function codeAsReply(code: string, fence: string): ChatMessage {
  return { role: 'assistant', content: '```' + fence + '\n' + code.replace(/\s+$/, '') + '\n```' };
}

/** A refinement: the earlier conversation (its last turn the model's code), then the change. */
export function refinementMessages(
  conversation: ChatMessage[],
  instruction: string,
): ChatMessage[] {
  return [
    ...conversation,
    {
      role: 'user',
      content:
        `Change the code as follows: ${instruction.trim()}\n\n` +
        'Keep everything else as it is. Reply with the complete updated code in one fenced ' +
        'block, written out in full, nothing else.',
    },
  ];
}

export const FENCE_BY_TARGET: Record<Target, string> = {
  html: 'html',
  tailwind: 'html',
  react: 'jsx',
  drawio: 'xml',
};
