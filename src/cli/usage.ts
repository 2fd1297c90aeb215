// What a command used, for bin/opsflow.js once it has run: the code cache it writes is only as useful as the code
// the command ran (bin/codeCache.js).
export const usage = { temporal: false };
