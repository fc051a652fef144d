/**
 * Which tool wrote a bundle: spg's package name and version, and the source commit
 * when it can be known (SPG_COMMIT or GITHUB_SHA, else the checkout's HEAD read
 * straight from .git, worktrees included); null when installed without git metadata.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../paths.js";
import type { ToolInfo } from "./manifest.js";

const COMMIT_PATTERN = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

export function readToolInfo(env: NodeJS.ProcessEnv = process.env, root: string = packageRoot()): ToolInfo {
  const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
    name: string;
    version: string;
  };
  return { name: manifest.name, version: manifest.version, commit: commitFromEnv(env) ?? gitHead(root) };
}

function commitFromEnv(env: NodeJS.ProcessEnv): string | null {
  for (const value of [env.SPG_COMMIT, env.GITHUB_SHA]) {
    if (value !== undefined && COMMIT_PATTERN.test(value.trim().toLowerCase()))
      return value.trim().toLowerCase();
  }
  return null;
}

/** HEAD's commit from a .git directory or a worktree's .git file; null when unavailable. */
export function gitHead(root: string): string | null {
  try {
    const dotGit = path.join(root, ".git");
    if (!existsSync(dotGit)) return null;
    let gitDir = dotGit;
    if (statSync(dotGit).isFile()) {
      const pointer = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, "utf8"));
      if (pointer === null) return null;
      gitDir = path.resolve(root, pointer[1].trim());
    }
    const head = readFileSync(path.join(gitDir, "HEAD"), "utf8").trim();
    if (COMMIT_PATTERN.test(head)) return head;
    const ref = /^ref:\s*(.+)$/.exec(head)?.[1];
    if (ref === undefined) return null;
    // Refs live in the common directory for worktrees.
    const commonFile = path.join(gitDir, "commondir");
    const commonDir = existsSync(commonFile)
      ? path.resolve(gitDir, readFileSync(commonFile, "utf8").trim())
      : gitDir;
    for (const directory of [gitDir, commonDir]) {
      const refFile = path.join(directory, ref);
      if (existsSync(refFile)) {
        const value = readFileSync(refFile, "utf8").trim();
        return COMMIT_PATTERN.test(value) ? value : null;
      }
    }
    const packed = path.join(commonDir, "packed-refs");
    if (existsSync(packed)) {
      for (const line of readFileSync(packed, "utf8").split("\n")) {
        const [sha, name] = line.trim().split(" ");
        if (name === ref && COMMIT_PATTERN.test(sha)) return sha;
      }
    }
    return null;
  } catch {
    // Git metadata is a courtesy; a damaged .git must not stop a run.
    return null;
  }
}
