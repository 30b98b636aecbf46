#!/usr/bin/env node
import { createMockOpenAI } from './server.js';

/** `yugong-mock-openai [--port N] [--host H] [--no-record]`: the fake OpenAI as its own process. */
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const mock = await createMockOpenAI({
  port: Number(flag('--port') ?? process.env.YUGONG_MOCK_PORT ?? 18090),
  host: flag('--host') ?? '127.0.0.1',
  record: !args.includes('--no-record'),
});
console.log(JSON.stringify({ msg: 'mock OpenAI listening', url: mock.baseURL }));
const stop = () => {
  void mock.close().then(() => process.exit(0));
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
