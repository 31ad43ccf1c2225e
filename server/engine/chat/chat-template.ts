/**
 * The checkpoint's own chat template, from `chat_template.jinja`, `chat_template.json` or the
 * `chat_template` field of `tokenizer_config.json` (first found wins, as in transformers).
 */
import { Template } from '@huggingface/jinja';
import { EngineError } from '../errors';
import { readCheckpointJson, readCheckpointText, type Json } from '../tokenizer/read-json';

/** A message as the template sees it: images are placeholders, their bytes stay on the host. */
export interface TemplateMessage {
  role: string;
  content: string | ({ type: 'text'; text: string } | { type: 'image' })[];
}

export interface ChatTemplate {
  /** Renders the conversation with the assistant turn opened (add_generation_prompt). */
  render(messages: TemplateMessage[]): string;
}

export function loadChatTemplate(modelDir: string, tokenizerConfig: Json): ChatTemplate {
  const { source, text } = findTemplateSource(modelDir, tokenizerConfig);
  let template: Template;
  try {
    template = new Template(text);
  } catch (error) {
    throw new EngineError(
      'bad_checkpoint',
      `The chat template in ${source} does not parse: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const specialTokens = templateSpecialTokens(tokenizerConfig);
  return {
    render(messages) {
      try {
        return template.render({ ...specialTokens, messages, add_generation_prompt: true });
      } catch (error) {
        throw new EngineError(
          'bad_request',
          `The chat template (${source}) rejected the messages: ${(error as Error).message}`,
          { cause: error },
        );
      }
    },
  };
}

function findTemplateSource(
  modelDir: string,
  tokenizerConfig: Json,
): { source: string; text: string } {
  const jinja = readCheckpointText(modelDir, 'chat_template.jinja', true);
  if (jinja !== undefined) return { source: 'chat_template.jinja', text: jinja };
  const json = readCheckpointJson(modelDir, 'chat_template.json', true);
  if (typeof json?.chat_template === 'string') {
    return { source: 'chat_template.json', text: json.chat_template };
  }
  const inline = tokenizerConfig.chat_template;
  if (typeof inline === 'string') return { source: 'tokenizer_config.json', text: inline };
  // Older configs may hold a list of named templates; the one named "default" is the chat one.
  if (Array.isArray(inline)) {
    const named = inline.find((t: { name?: string }) => t?.name === 'default') as
      { template?: unknown } | undefined;
    if (typeof named?.template === 'string') {
      return { source: 'tokenizer_config.json', text: named.template };
    }
  }
  throw new EngineError(
    'model_not_found',
    `No chat template in ${modelDir}: expected chat_template.jinja, chat_template.json or a chat_template entry in tokenizer_config.json`,
  );
}

/** bos_token / eos_token / ... as plain strings, the way transformers passes them to templates. */
function templateSpecialTokens(config: Json): Record<string, string> {
  const tokens: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const value = config[key];
    if (typeof value === 'string') tokens[key] = value;
    else if (value && typeof value === 'object' && typeof (value as Json).content === 'string') {
      tokens[key] = (value as Json).content as string;
    }
  }
  return tokens;
}
