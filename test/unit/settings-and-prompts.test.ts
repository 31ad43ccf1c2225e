import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULTS,
  needsServerRestart,
  serverReaction,
  readSettings,
  type Settings,
} from '../../src/settings/schema';
import {
  codeAsReply,
  generationMessages,
  imageDataUrl,
  refinementMessages,
} from '../../src/generation/prompts';

describe('settings reader', () => {
  it('gives the defaults when nothing is set', () => {
    assert.deepEqual(
      readSettings(() => undefined),
      DEFAULTS,
    );
  });

  it('reads valid values and falls back on bad ones', () => {
    const values: Partial<Record<keyof Settings, unknown>> = {
      backend: 'openai-compatible',
      endpoint: ' https://example.test/v1 ',
      maxTokens: 512.4,
      temperature: 7,
      topP: 0.5,
      defaultTarget: 'react',
      insertMode: 'sideways',
      device: 'cuda',
      previewAllowScripts: 'yes',
      readAhead: false,
      imageDetail: 'ultra',
    };
    const settings = readSettings((key) => values[key]);
    assert.equal(settings.backend, 'openai-compatible');
    assert.equal(settings.endpoint, 'https://example.test/v1');
    assert.equal(settings.maxTokens, 512);
    assert.equal(settings.temperature, DEFAULTS.temperature);
    assert.equal(settings.topP, 0.5);
    assert.equal(settings.defaultTarget, 'react');
    assert.equal(settings.insertMode, DEFAULTS.insertMode);
    assert.equal(settings.device, 'cuda');
    assert.equal(settings.previewAllowScripts, false);
    assert.equal(settings.readAhead, false);
    assert.equal(settings.imageDetail, DEFAULTS.imageDetail);
    assert.equal(
      readSettings((key) => (key === 'imageDetail' ? 'low' : undefined)).imageDetail,
      'low',
    );
  });

  it('has every setting in package.json, with the same default', () => {
    const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    const contributed = manifest.contributes.configuration.properties as Record<
      string,
      { default: unknown }
    >;
    const keys = Object.keys(contributed).map((key) => key.replace(/^designToCode\./, ''));
    assert.deepEqual(keys.sort(), Object.keys(DEFAULTS).sort());
    for (const [key, value] of Object.entries(DEFAULTS)) {
      assert.deepEqual(contributed[`designToCode.${key}`]!.default, value, key);
    }
  });

  it('lists the settings that need a server restart', () => {
    assert.equal(
      needsServerRestart((key) => key === 'device'),
      true,
    );
    assert.equal(
      needsServerRestart((key) => key === 'temperature'),
      false,
    );
  });
});

describe('server reaction to a settings change', () => {
  const only =
    (...keys: string[]) =>
    (key: string) =>
      keys.includes(key);
  it('stops a running local server when the backend becomes a remote endpoint', () => {
    assert.equal(serverReaction(only('backend'), 'openai-compatible', true), 'stop');
    assert.equal(serverReaction(only('backend'), 'openai-compatible', false), 'none');
  });
  it('offers a restart for model, device, precision or image detail only while the local backend is used', () => {
    assert.equal(serverReaction(only('model'), 'local', true), 'offerRestart');
    assert.equal(serverReaction(only('precision'), 'local', true), 'offerRestart');
    assert.equal(serverReaction(only('imageDetail'), 'local', true), 'offerRestart');
    assert.equal(serverReaction(only('model'), 'openai-compatible', true), 'none');
    assert.equal(serverReaction(only('temperature'), 'local', true), 'none');
    assert.equal(serverReaction(only('device'), 'local', false), 'none');
  });
});

describe('prompts', () => {
  it('sends the image as a data URL and the task for the target, with the instruction', () => {
    const url = imageDataUrl(new Uint8Array([1, 2, 3]), 'image/png');
    assert.equal(url, 'data:image/png;base64,AQID');
    const messages = generationMessages('drawio', url, 'use blue boxes');
    assert.equal(messages[0]!.role, 'system');
    const parts = messages[1]!.content as {
      type: string;
      text?: string;
      image_url?: { url: string };
    }[];
    assert.equal(parts[0]!.image_url!.url, url);
    assert.match(parts[1]!.text!, /mxGraphModel/);
    assert.match(parts[1]!.text!, /Also: use blue boxes$/);
    assert.doesNotMatch(
      (generationMessages('html', url, '  ')[1]!.content as { text?: string }[])[1]!.text!,
      /Also:/,
    );
  });

  it('asks for a complete file per target, with the parts Qwen3-VL tends to leave out', () => {
    const task = (target: 'html' | 'tailwind' | 'react' | 'drawio') =>
      (
        generationMessages(target, 'data:image/png;base64,AA==', '')[1]!.content as {
          text?: string;
        }[]
      )[1]!.text!;
    assert.match(generationMessages('html', '', '')[0]!.content as string, /never abbreviate/);
    assert.match(task('html'), /<!DOCTYPE html> to <\/html>.*never as external image URLs/s);
    assert.match(task('tailwind'), /@tailwindcss\/browser@4.*no tailwind\.config/s);
    assert.match(task('react'), /import React from 'react'.*export default function App\(\)/s);
    assert.match(task('react'), /className/);
    assert.match(task('drawio'), /unique id.*source and target.*relative="1"/s);
    assert.match(task('drawio'), /Escape &, < and "/);
    for (const target of ['html', 'tailwind', 'react', 'drawio'] as const) {
      assert.match(task(target), /Reply in a ```(html|jsx|xml) block\.$/);
    }
  });

  it('refines by continuing the conversation with the current code and the change', () => {
    const first = generationMessages('html', 'data:image/png;base64,AA==', '');
    const next = refinementMessages([...first, codeAsReply('<p>a</p>\n', 'html')], 'make it red');
    assert.deepEqual(next.slice(0, 2), first);
    assert.deepEqual(next[2], { role: 'assistant', content: '```html\n<p>a</p>\n```' });
    assert.equal(next[3]!.role, 'user');
    assert.match(next[3]!.content as string, /make it red/);
    assert.match(
      next[3]!.content as string,
      /Keep everything else as it is.*complete updated code/s,
    );
  });
});
