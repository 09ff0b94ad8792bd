import { createdObjects, decodeEventKey, InvalidEvent } from '../src/events';

describe('event validation at the edge', () => {
  it('R15: S3 notification keys are form-decoded: "+" is a space, %2B a plus, %25 a percent', () => {
    expect(decodeEventKey('users/u/a+b%2Bc%25d+%C3%BC')).toBe('users/u/a b+c%d ü');
    expect(decodeEventKey('users%2Fu%2Ff')).toBe('users/u/f');
    expect(() => decodeEventKey('users/u/%E0%A4%A')).toThrow(InvalidEvent);
  });

  it('reads S3 notifications (version ids, "null" meaning none) and their EventBridge form (keys as they are)', () => {
    const s3 = {
      Records: [
        { eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: 'users/u/a+b', versionId: 'v1', eTag: 'e', size: 3, sequencer: '01' } } },
        { eventSource: 'aws:s3', eventName: 'ObjectCreated:Copy', s3: { bucket: { name: 'b' }, object: { key: 'users/u/c', versionId: 'null' } } },
        { eventSource: 'aws:s3', eventName: 'ObjectRemoved:Delete', s3: { bucket: { name: 'b' }, object: { key: 'users/u/d' } } },
      ],
    };
    expect(createdObjects(s3)).toEqual([
      { bucket: 'b', key: 'users/u/a b', versionId: 'v1', eTag: 'e', size: 3, sequencer: '01' },
      { bucket: 'b', key: 'users/u/c', versionId: undefined, eTag: undefined, size: undefined, sequencer: undefined },
    ]);
    const bridge = { source: 'aws.s3', 'detail-type': 'Object Created', detail: { bucket: { name: 'b' }, object: { key: 'users/u/a+b', 'version-id': 'v2', etag: 'e' } } };
    expect(createdObjects(bridge)).toEqual([{ bucket: 'b', key: 'users/u/a+b', versionId: 'v2', eTag: 'e', size: undefined, sequencer: undefined }]);
    expect(createdObjects({ ...bridge, 'detail-type': 'Object Deleted' })).toEqual([]);
  });

  it("S3's test event is nothing to do; anything else is an InvalidEvent", () => {
    expect(createdObjects({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' })).toEqual([]);
    for (const bad of [null, 'x', {}, { Records: [{ eventSource: 'aws:sqs' }] }, { Records: [{ eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'b' }, object: { key: '' } } }] }]) {
      expect(() => createdObjects(bad)).toThrow(InvalidEvent);
    }
  });
});
