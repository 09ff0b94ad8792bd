import { runService } from '@scs/common';
import { buildApp } from './app';
import { UploadConfig } from './config';

runService('upload', UploadConfig, (config, deps) => buildApp(config, { ...deps, sweep: true }));
