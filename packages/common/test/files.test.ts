import {
  fileKey,
  type FileRecord,
  ownFieldsUpdate,
  parseFileKey,
  parseStagingKey,
  pendingKey,
  recordOf,
  stagingKey,
  usageKey,
} from '@scs/common/files';

const record: FileRecord = {
  userId: 'u1',
  fileId: '0190a1b2-0000-7000-8000-000000000001',
  name: 'report.pdf',
  size: 1234,
  contentType: 'application/pdf',
  sha256: 'a'.repeat(64),
  sensitive: true,
  status: 'active',
  key: 'users/u1/0190a1b2-0000-7000-8000-000000000001',
  createdAt: '2026-12-07T10:00:00.000Z',
};

describe('file keys', () => {
  it('builds and parses the object keys of files and of staged direct uploads, and nothing else', () => {
    expect(fileKey('u1', 'f1')).toBe('users/u1/f1');
    expect(stagingKey('u1', 'f1')).toBe('incoming/u1/f1');
    expect(parseFileKey(fileKey('u1', 'f1'))).toEqual({ userId: 'u1', fileId: 'f1' });
    expect(parseStagingKey(stagingKey('u1', 'f1'))).toEqual({ userId: 'u1', fileId: 'f1' });
    for (const other of ['incoming/u1/f1', 'users/u1', 'users/u1/f1/x', 'users//f1', 'users/u1/', 'u1/f1']) expect(parseFileKey(other)).toBeUndefined();
    expect(parseStagingKey('users/u1/f1')).toBeUndefined();
  });
});

describe('file record items', () => {
  it('reads an item with the types of a record; a pending one at its pending key gets its file id back', () => {
    expect(recordOf({ ...record })).toEqual(record);
    const pending = { ...record, ...pendingKey(record.userId, record.fileId), status: 'pending', sha256: '', expiresAt: 1_800_000_000, uploadId: 'mpu', partSize: 8_388_608 };
    expect(recordOf(pending)).toEqual({ ...record, status: 'pending', sha256: '', expiresAt: 1_800_000_000, uploadId: 'mpu', partSize: 8_388_608 });
    // The mover's attributes are kept; one written before the upload service's fields reads as empty ones.
    expect(recordOf({ ...record, location: 'sensitive', movedAt: '2026-12-07T10:01:00.000Z' })).toMatchObject({ location: 'sensitive', movedAt: '2026-12-07T10:01:00.000Z' });
  });

  it('refuses an item that is no file record: the usage item, a reservation, an unknown status', () => {
    expect(() => recordOf({ ...usageKey('u1'), usedBytes: 3 })).toThrow('not a file record: u1/#usage');
    expect(() => recordOf({ userId: 'u1', fileId: '#reservation#r1', bytes: 5 })).toThrow('not a file record');
    expect(() => recordOf({ ...record, status: 'gone' })).toThrow('not a file record');
  });

  it("writes the upload service's own fields only: never the key, never the mover's attributes", () => {
    const update = ownFieldsUpdate('scs-files', { ...record, location: 'sensitive', movedAt: 'then', claim: undefined });
    expect(update.Key).toEqual({ userId: record.userId, fileId: record.fileId });
    const names = Object.values(update.ExpressionAttributeNames);
    expect(names).toEqual(expect.arrayContaining(['name', 'size', 'sha256', 'status', 'key', 'createdAt']));
    expect(names).not.toEqual(expect.arrayContaining(['location']));
    expect(names).not.toContain('movedAt');
    expect(names).not.toContain('userId');
    expect(names).not.toContain('claim');
  });
});
