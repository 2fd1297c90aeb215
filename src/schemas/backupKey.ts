// Backup keys name a database backup: `YYYYMMDD` for the nightly (scheduled) one, `YYYYMMDDHHMM` for a manual one
// (the GigaDB runbook's convention), in the system's time zone. Pure, so workflow code computes keys from
// workflow time and validates them where the input arrives.
import { z } from 'zod';

export type BackupKeyKind = 'scheduled' | 'manual';

const KEY = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2}))?$/;

function daysIn(year: number, month: number): number {
  return [31, year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
}

/** `scheduled` or `manual` for a well-formed key naming a real date (and time); undefined for anything else. */
export function backupKeyKind(key: string): BackupKeyKind | undefined {
  const m = KEY.exec(key);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (year < 2000 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (m[4] === undefined) return 'scheduled';
  return Number(m[4]) <= 23 && Number(m[5]) <= 59 ? 'manual' : undefined;
}

export const backupKey = z
  .string()
  .refine((k) => backupKeyKind(k) !== undefined, 'a backup key: YYYYMMDD (scheduled) or YYYYMMDDHHMM (manual), a real date and time');

/** Whether a string names an IANA time zone this runtime knows. */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The wall-clock digits of `date` in `timeZone`: YYYYMMDDHHMM. */
function wallClock(date: Date, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(date);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}${get('month')}${get('day')}${get('hour')}${get('minute')}`;
}

/** The key a backup taken at `date` gets: the day for a scheduled one, the minute for a manual one. */
export function backupKeyFor(date: Date, timeZone: string, kind: BackupKeyKind): string {
  const digits = wallClock(date, timeZone);
  return kind === 'scheduled' ? digits.slice(0, 8) : digits;
}

/**
 * Retention: the keys to delete. A key is expired when its day is more than `days` days before `now`'s day in the
 * system's zone; the newest `keep` keys stay whatever their age, so a sync that has failed for weeks still leaves
 * backups to restore from. Keys sort by time as strings (YYYYMMDD before YYYYMMDDHHMM of the same day).
 */
export function expiredKeys(keys: string[], now: Date, timeZone: string, retention: { days: number; keep: number }): string[] {
  const cutoff = backupKeyFor(new Date(now.getTime() - retention.days * 86_400_000), timeZone, 'scheduled');
  const newestFirst = [...new Set(keys)].sort().reverse();
  return newestFirst.slice(retention.keep).filter((k) => k.slice(0, 8) < cutoff);
}
