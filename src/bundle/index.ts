/**
 * The bundle library: what `spg prove` writes and what `spg verify` reads.
 *
 *   canonical.ts  canonicalJson / canonicalJsonl / parseJson / parseJsonl / isCanonicalJson(l)
 *   format.ts     entry names and order, signing domain, zip read limits
 *   manifest.ts   buildManifest, sha256Hex, Manifest, ToolInfo
 *   keys.ts       generateKeyPair, writeKeyPair, readSecretKey, readPublicKey,
 *                 loadOrCreateDefaultKey, ephemeralKey, keyIdOf, defaultKeyPath
 *   sign.ts       signManifest, checkSignature / verifySignature, readTrustedKeys
 *   write.ts      writeBundle (atomic, deterministic), assembleBundle, zipEntries
 *   read.ts       readBundleZip / readBundleZipBuffer: safe reading, "zip-safety" findings
 *   tool-info.ts  readToolInfo: package name, version and commit for the manifest
 */
export * from "./canonical.js";
export * from "./format.js";
export * from "./keys.js";
export * from "./manifest.js";
export * from "./read.js";
export * from "./sign.js";
export * from "./tool-info.js";
export * from "./write.js";
