// Shared plumbing of the command-line scripts: options, JSON out, exit codes.
// Exit codes: 0 success, 1 a check failed, 2 usage or runtime error.
import path from 'node:path';
import { parseArgs } from 'node:util';

export const COMMON_OPTIONS = {
  threads: { type: 'string', default: '1' },
  'opt-level': { type: 'string', default: 'all' },
  help: { type: 'boolean', short: 'h', default: false },
};

class UsageError extends Error {}

export function usageError(message) {
  return new UsageError(message);
}

export function intOption(values, name, min) {
  const text = values[name];
  if (!/^-?\d+$/.test(text) || Number(text) < min) {
    throw usageError(`--${name} must be an integer >= ${min}, got '${text}'`);
  }
  return Number(text);
}

export function numberOption(values, name, fallback) {
  const text = values[name] ?? fallback;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw usageError(`--${name} must be a non-negative number, got '${text}'`);
  }
  return value;
}

export function sessionOptions(values) {
  return { threads: intOption(values, 'threads', 1), optLevel: values['opt-level'] };
}

// A tensor name made safe to use in a file name.
export function fileStem(name) {
  return name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || 'unnamed';
}

export function listOption(text) {
  return text.split(',').filter((s) => s !== '');
}

// JSON has no Infinity or NaN; keep them readable rather than null.
function nonFinite(_key, value) {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

// main(values, positionals) returns {summary, exitCode = 0}.
export async function runCli({ usage, options, positionals }, main) {
  const script = path.basename(process.argv[1]);
  try {
    let parsed;
    try {
      parsed = parseArgs({ options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true });
    } catch (err) {
      throw usageError(err.message);
    }
    if (parsed.values.help) {
      console.log(usage);
      return;
    }
    if (parsed.positionals.length !== positionals) {
      throw usageError(`expected ${positionals} arguments, got ${parsed.positionals.length}`);
    }
    const { summary, exitCode = 0 } = await main(parsed.values, parsed.positionals);
    console.log(JSON.stringify(summary, nonFinite));
    process.exitCode = exitCode;
  } catch (err) {
    console.error(`${script}: error: ${err.message}`);
    if (err instanceof UsageError) console.error(usage);
    process.exitCode = 2;
  }
}

export const SESSION_USAGE = '  --threads N       intra-op threads (default 1)\n'
  + '  --opt-level L     graph optimization: disabled|basic|extended|all (default all)';
