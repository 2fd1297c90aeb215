// Worker settings given as a flag or an environment variable: whole numbers, refused before the worker starts.

export function wholeNumber(value: string, name: string, unit: string): number {
  if (!/^\d+$/.test(value.trim())) throw new Error(`${name}: expected a whole number of ${unit} (0 or more), got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The variable's value, or `fallback` when it is unset or empty. */
export function wholeNumberFromEnv(variable: string, fallback: number, unit: string): number {
  const raw = process.env[variable];
  return raw === undefined || raw === '' ? fallback : wholeNumber(raw, variable, unit);
}
