import { runService } from '@scs/common';
import { buildApp } from './app';
import { UploadConfig } from './config';

runService('upload', UploadConfig, buildApp);
